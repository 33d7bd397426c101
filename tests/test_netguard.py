"""The SSRF guard: feeds and pages only from public addresses, unless allow-listed.

The names are resolved by a resolver the test controls (no DNS); the only server is a real
one on 127.0.0.1, reached when allow-listed.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import pytest

from digest.netguard import AddressPolicy, BlockedAddress, guarded_transport
from tests.localserver import LocalServer

ZONE = {
    "feeds.example": ["127.0.0.1"],  # a public-looking name pointing at this machine
    "metadata.example": ["169.254.169.254"],
    "lan.example": ["10.1.2.3"],
    "mixed.example": ["93.184.216.34", "192.168.0.7"],
    "mapped.example": ["::ffff:127.0.0.1"],
    "public.example": ["93.184.216.34"],
}


def resolver(host: str, port: int) -> Sequence[str]:
    return ZONE.get(host, [host])  # an address literal resolves to itself


def policy(*allow: str) -> AddressPolicy:
    return AddressPolicy.from_config(allow, resolver=resolver)


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("feeds.example", "feeds.example resolves to 127.0.0.1, which is a loopback address"),
        ("metadata.example", "resolves to 169.254.169.254, which is a link-local address"),
        ("lan.example", "resolves to 10.1.2.3, which is a private address"),
        ("mixed.example", "resolves to 192.168.0.7, which is a private address"),
        ("mapped.example", "resolves to ::ffff:127.0.0.1, which is a loopback address"),
        ("127.0.0.1", "127.0.0.1 is a loopback address"),
        ("[::1]", "[::1] is a loopback address"),
        ("0.0.0.0", "0.0.0.0 is a private address"),
    ],
)
def test_non_public_addresses_are_refused_after_resolution(host: str, reason: str) -> None:
    with pytest.raises(BlockedAddress) as caught:
        policy().addresses(host, 80)
    assert reason in str(caught.value)
    assert "list it in the source's allow_private" in str(caught.value)


def test_public_and_allow_listed_addresses_pass() -> None:
    assert policy().addresses("public.example", 443) == ["93.184.216.34"]
    assert policy("10.0.0.0/8").addresses("lan.example", 80) == ["10.1.2.3"]
    assert policy("lan.example").addresses("lan.example", 80) == ["10.1.2.3"]
    assert policy("127.0.0.1").addresses("feeds.example", 80) == ["127.0.0.1"]


def test_the_connection_goes_to_the_checked_address_and_redirects_are_checked_too() -> None:
    with LocalServer() as server:
        server.add("/feed.xml", b"<rss/>", content_type="application/rss+xml")
        server.add("/away", b"", status=302, headers={"Location": "http://lan.example/x"})
        port = server.url("/").rsplit(":", 1)[1].split("/")[0]
        allowed = guarded_transport(policy("127.0.0.1"))
        with httpx.Client(transport=allowed) as client:
            # The name is looked up by the guard's resolver, the socket goes to 127.0.0.1.
            response = client.get(f"http://feeds.example:{port}/feed.xml")
            assert response.status_code == 200 and response.content == b"<rss/>"
            first = client.get(f"http://feeds.example:{port}/away")
            assert first.status_code == 302
            with pytest.raises(BlockedAddress, match=r"10\.1\.2\.3, which is a private address"):
                client.get(first.headers["location"])
        with (
            httpx.Client(transport=guarded_transport(policy())) as client,
            pytest.raises(BlockedAddress, match="loopback"),
        ):
            client.get(f"http://feeds.example:{port}/feed.xml")
    assert [seen.path for seen in server.requests] == ["/feed.xml", "/away"]


def test_a_feed_fetch_refuses_private_targets_and_redirects_to_them() -> None:
    from digest.errors import SourceError
    from digest.sources.http import FetchOptions, fetch

    with LocalServer() as server:
        server.add("/feed.xml", b"<rss/>", content_type="application/rss+xml")
        server.redirect("/to-metadata", "http://metadata.example/latest/meta-data/")
        port = server.url("/").rsplit(":", 1)[1].split("/")[0]
        named = f"http://feeds.example:{port}"
        refused = FetchOptions(timeout=5, resolver=resolver)
        with pytest.raises(SourceError, match=r"resolves to 127\.0\.0\.1, which is a loopback"):
            fetch(f"{named}/feed.xml", refused)
        with pytest.raises(SourceError, match="is a loopback address"):
            fetch(server.url("/feed.xml"), FetchOptions(timeout=5))  # the system resolver
        allowed = FetchOptions(timeout=5, resolver=resolver, allow_private=("127.0.0.1",))
        assert fetch(f"{named}/feed.xml", allowed).content == b"<rss/>"
        with pytest.raises(SourceError, match=r"169\.254\.169\.254, which is a link-local"):
            fetch(f"{named}/to-metadata", allowed)
    assert [seen.path for seen in server.requests] == ["/feed.xml", "/to-metadata"]
