"""Fetch a source document over HTTP(S) (httpx) or from a ``file:`` path.

- ``timeout`` bounds the whole fetch: connecting, every redirect and the download;
- redirects are followed by hand (at most ``max_redirects``) so that a loop is reported as a
  loop, with the URLs that form it;
- the body is streamed and abandoned as soon as it exceeds ``max_bytes``;
- ``If-None-Match``/``If-Modified-Since`` come from the previous :class:`SourceState`; a
  ``304 Not Modified`` comes back with no content (``content`` is None).

Every failure is a :class:`~digest.errors.SourceError` that names the URL and the reason
("HTTP 500 Internal Server Error", "timed out after 5 s", "redirect loop: a -> b -> a").
"""

from __future__ import annotations

import re
import ssl
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urljoin, urlsplit
from urllib.request import url2pathname

from pydantic import Field, field_validator

from digest import __version__
from digest.errors import SourceError
from digest.headers import check_header_value
from digest.models import SourceState
from digest.sources.base import SourceEntry

if TYPE_CHECKING:
    import httpx

    from digest.netguard import Resolver

FEED_ACCEPT = (
    "application/feed+json, application/atom+xml, application/rss+xml, application/rdf+xml, "
    "application/json;q=0.9, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


def default_user_agent(site_url: str | None = None) -> str:
    return f"digest/{__version__}" + (f" (+{site_url})" if site_url else "")


@dataclass(frozen=True)
class FetchOptions:
    timeout: float = 20.0
    max_bytes: int = 10_000_000
    user_agent: str = default_user_agent()
    max_redirects: int = 5
    # Hosts, addresses and networks that may be fetched from although they are not public
    # (loopback, private, link-local): digest.netguard refuses every other such address.
    allow_private: tuple[str, ...] = ()
    resolver: Resolver | None = field(default=None, compare=False)  # None: the system's


def _source_url(value: str) -> str:
    value = value.strip()
    if value.startswith("file:"):
        if len(value) == len("file:"):
            raise ValueError("file: URL needs a path, e.g. file:feeds/news.xml")
        return value
    if not re.match(r"^https?://[^/\s]+", value):
        raise ValueError(
            "must be an absolute http(s) URL or a file: path, e.g. https://example.org/feed.xml"
        )
    return value


class HttpSourceConfig(SourceEntry):
    """The keys of every source fetched from a URL (or a ``file:``)."""

    url: str
    name: str | None = None
    timeout: float = Field(default=20, gt=0, le=600, description="Seconds for the whole fetch.")
    max_bytes: int = Field(default=10_000_000, ge=1024, description="Largest response accepted.")
    user_agent: str | None = Field(
        default=None, description='Default: "digest/<version> (+<site.base_url>)".'
    )
    tags: list[str] = Field(default=[], description="Tags added to every item of this source.")
    allow_private: list[str] = Field(
        default=[],
        description="Hosts, addresses or networks (127.0.0.1, 10.0.0.0/8, intranet.example) "
        "this source may fetch from although they are not public; others are refused.",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _source_url(value)

    @field_validator("user_agent")
    @classmethod
    def _agent(cls, value: str | None) -> str | None:
        if value is not None:
            check_header_value("user_agent", value)
        return value

    @property
    def source_name(self) -> str:
        return self.name or f"{self.kind}:{self.url}"

    @property
    def target(self) -> str:
        return self.url

    def fetch_options(self, site_url: str) -> FetchOptions:
        return FetchOptions(
            timeout=self.timeout,
            max_bytes=self.max_bytes,
            user_agent=self.user_agent or default_user_agent(site_url),
            allow_private=tuple(self.allow_private),
        )


@dataclass(frozen=True)
class Fetched:
    url: str  # after redirects; relative links in the document resolve against it
    content: bytes | None  # None when not modified
    content_type: str | None = None  # the full header value, charset included
    charset: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    status: int = 200


def fetch(
    url: str,
    options: FetchOptions,
    prior: SourceState | None = None,
    *,
    accept: str = FEED_ACCEPT,
    base_dir: Path | None = None,
    transport: httpx.BaseTransport | None = None,
) -> Fetched:
    """GET ``url`` (or read a ``file:``); ``prior`` supplies the conditional-GET validators."""
    # httpx (~45 ms to import) loads on the first fetch, not with the source kinds that every
    # process imports through digest.config.
    import httpx

    if url.startswith("file:"):
        return _read_file(url, options, base_dir)
    headers = {"User-Agent": options.user_agent, "Accept": accept}
    if prior is not None and prior.etag:
        headers["If-None-Match"] = prior.etag
    if prior is not None and prior.last_modified:
        headers["If-Modified-Since"] = prior.last_modified
    deadline = time.monotonic() + options.timeout
    if transport is None:  # the network: only public addresses, or what the source allows
        from digest.netguard import AddressPolicy, guarded_transport, system_resolver

        policy = AddressPolicy.from_config(
            options.allow_private, resolver=options.resolver or system_resolver
        )
        transport = guarded_transport(policy, verify=_tls_context())
    try:
        with httpx.Client(
            transport=transport, follow_redirects=False, trust_env=False, verify=_tls_context()
        ) as client:
            return _get(client, url, headers, options, prior, deadline)
    except httpx.TimeoutException:
        raise SourceError(f"{url}: timed out after {options.timeout:g} s") from None
    except httpx.ConnectError as exc:
        raise SourceError(f"{url}: cannot connect: {exc}") from None
    except httpx.InvalidURL as exc:
        raise SourceError(f"{url}: invalid URL: {exc}") from None
    except httpx.TransportError as exc:
        raise SourceError(f"{url}: network error: {exc}") from None
    except httpx.HTTPError as exc:
        raise SourceError(f"{url}: {type(exc).__name__}: {exc}") from None


def _get(
    client: httpx.Client,
    url: str,
    headers: dict[str, str],
    options: FetchOptions,
    prior: SourceState | None,
    deadline: float,
) -> Fetched:
    visited = [url]
    current = url
    while True:
        timeout = _remaining(deadline, url, options)  # seconds for connect, read, write, pool
        request = client.build_request("GET", current, headers=headers, timeout=timeout)
        response = client.send(request, stream=True)
        try:
            if response.status_code in REDIRECT_STATUSES and "location" in response.headers:
                target = urljoin(current, response.headers["location"])
                if target in visited:
                    chain = " -> ".join([*visited[visited.index(target) :], target])
                    raise SourceError(f"{url}: redirect loop: {chain}")
                if len(visited) > options.max_redirects:
                    raise SourceError(
                        f"{url}: more than {options.max_redirects} redirects (last: {target})"
                    )
                if urlsplit(target).scheme not in ("http", "https"):
                    raise SourceError(f"{url}: redirect to a non-HTTP URL {target!r} refused")
                visited.append(target)
                current = target
                continue
            via = f" (redirected to {current})" if current != url else ""
            if response.status_code == 304:
                if prior is None or not (prior.etag or prior.last_modified):
                    raise SourceError(f"{url}: HTTP 304 Not Modified to an unconditional request")
                return Fetched(
                    url=current,
                    content=None,
                    etag=response.headers.get("etag", prior.etag),
                    last_modified=response.headers.get("last-modified", prior.last_modified),
                    status=304,
                )
            if response.status_code >= 400:
                reason = response.reason_phrase or ""
                raise SourceError(f"{url}: HTTP {response.status_code} {reason}".rstrip() + via)
            if response.status_code != 200:
                raise SourceError(f"{url}: unexpected HTTP status {response.status_code}{via}")
            content = _read_body(response, url, options, deadline)
            return Fetched(
                url=current,
                content=content,
                content_type=response.headers.get("content-type"),
                charset=response.charset_encoding,
                etag=response.headers.get("etag"),
                last_modified=response.headers.get("last-modified"),
                status=response.status_code,
            )
        finally:
            response.close()


@cache
def _tls_context() -> ssl.SSLContext:
    """Certificates are always verified; building the context (the CA bundle) costs 15-80 ms,
    so every fetch shares one."""
    import httpx

    return httpx.create_ssl_context()


def _remaining(deadline: float, url: str, options: FetchOptions) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise SourceError(f"{url}: timed out after {options.timeout:g} s")
    return left


def _read_body(response: httpx.Response, url: str, options: FetchOptions, deadline: float) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > options.max_bytes:
        raise SourceError(
            f"{url}: response of {int(declared):,} bytes exceeds max_bytes ({options.max_bytes:,})"
        )
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > options.max_bytes:
            raise SourceError(f"{url}: response exceeds max_bytes ({options.max_bytes:,})")
        chunks.append(chunk)
        _remaining(deadline, url, options)
    return b"".join(chunks)


def file_path(url: str, base_dir: Path | None) -> Path:
    """``file:///abs/feed.xml``, ``file:feeds/news.xml`` (relative to the config's folder)."""
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise SourceError(f"{url}: file URLs on another host are not supported")
    path = Path(url2pathname(unquote(parts.path)))
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return path


def _read_file(url: str, options: FetchOptions, base_dir: Path | None) -> Fetched:
    path = file_path(url, base_dir)
    try:
        size = path.stat().st_size
        if size > options.max_bytes:
            raise SourceError(
                f"{url}: file of {size:,} bytes exceeds max_bytes ({options.max_bytes:,})"
            )
        content = path.read_bytes()
    except FileNotFoundError:
        raise SourceError(f"{url}: file not found ({path})") from None
    except OSError as exc:
        raise SourceError(f"{url}: cannot read {path}: {exc.strerror or exc}") from None
    return Fetched(url=path.resolve().as_uri(), content=content)
