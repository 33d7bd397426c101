"""DKIM: what we sign verifies with dkimpy against the record ``dns_record`` publishes; a
changed or added List-Unsubscribe breaks it; key problems are one-line errors."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from digest.dkim import DkimSettings, DkimSigner
from digest.errors import ConfigError

NOW = datetime(2017, 11, 20, 7, 0, tzinfo=UTC)
MESSAGE = (
    b"Date: Mon, 20 Nov 2017 08:00:00 +0100\r\n"
    b"Message-ID: <weekly.1@example.org>\r\n"
    b"To: =?utf-8?q?J=C3=BCrgen?= <juergen@example.net>\r\n"
    b"List-Unsubscribe: <https://news.example.org/unsubscribe/abc>\r\n"
    b"From: Newsletter <newsletter@example.org>\r\n"
    b"Subject: =?utf-8?q?Wochen=C3=BCberblick?=\r\n"
    b"List-Id: <weekly.example.org>\r\n"
    b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/alternative; boundary="b"\r\n'
    b"\r\n"
    b'--b\r\nContent-Type: text/plain; charset="utf-8"\r\n\r\nHallo\r\n.leading dot\r\n--b--\r\n'
)


def write_key(path: Path, algorithm: str) -> Path:
    key = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if algorithm == "rsa-sha256"
        else ed25519.Ed25519PrivateKey.generate()
    )
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def dns_of(signer: DkimSigner) -> Callable[..., bytes | None]:
    records = {f"{signer.record_name}.".encode(): signer.dns_record().encode()}

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return records.get(name)

    return lookup


@pytest.fixture(params=["rsa-sha256", "ed25519-sha256"])
def signer(request: pytest.FixtureRequest, tmp_path: Path) -> DkimSigner:
    key = write_key(tmp_path / "dkim.pem", request.param)
    return DkimSigner(DkimSettings("example.org", "digest1", key, request.param))


def test_a_signed_message_verifies_against_the_published_record(signer: DkimSigner) -> None:
    signed = signer.sign(MESSAGE, NOW)
    assert signed.startswith(b"DKIM-Signature: ")
    assert signed.endswith(MESSAGE)
    assert dkim.verify(signed, dnsfunc=dns_of(signer))
    header = signed[: signed.index(b"\r\nDate:")].replace(b"\r\n ", b" ")
    for name in (b"from", b"to", b"subject", b"date", b"message-id", b"list-id"):
        assert name in header
    assert b"list-unsubscribe : list-unsubscribe-post" in header
    assert signer.settings.algorithm.encode() in header


def test_a_changed_unsubscribe_header_breaks_the_signature(signer: DkimSigner) -> None:
    signed = signer.sign(MESSAGE, NOW)
    changed = signed.replace(b"/unsubscribe/abc", b"/unsubscribe/xyz")
    assert not dkim.verify(changed, dnsfunc=dns_of(signer))
    added = signed.replace(
        b"MIME-Version", b"List-Unsubscribe: <https://evil.example/u>\r\nMIME-Version"
    )
    assert not dkim.verify(added, dnsfunc=dns_of(signer))
    body = signed.replace(b"Hallo", b"Hallx")
    assert not dkim.verify(body, dnsfunc=dns_of(signer))


def test_the_zone_line_splits_long_records(tmp_path: Path) -> None:
    key = write_key(tmp_path / "k.pem", "rsa-sha256")
    signer = DkimSigner(DkimSettings("example.org", "s1", key))
    line = signer.zone_line()
    assert line.startswith('s1._domainkey.example.org. IN TXT ( "v=DKIM1; k=rsa; p=')
    assert all(len(chunk) <= 255 for chunk in line.split('"')[1::2])
    assert "".join(line.split('"')[1::2]) == signer.dns_record()


def test_the_base64_seed_dknewkey_writes_loads(tmp_path: Path) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    seed = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    (tmp_path / "ed.key").write_text(base64.b64encode(seed).decode() + "\n")
    signer = DkimSigner(DkimSettings("example.org", "s1", tmp_path / "ed.key", "ed25519-sha256"))
    assert dkim.verify(signer.sign(MESSAGE, NOW), dnsfunc=dns_of(signer))


@pytest.mark.parametrize(
    ("content", "algorithm", "message"),
    [
        (None, "rsa-sha256", "No such file"),
        (b"not a key", "rsa-sha256", "not a private key"),
        ("ed25519", "rsa-sha256", "does not fit algorithm rsa-sha256"),
    ],
)
def test_key_problems_are_one_line_errors(
    tmp_path: Path, content: bytes | str | None, algorithm: str, message: str
) -> None:
    path = tmp_path / "key.pem"
    if content == "ed25519":
        write_key(path, "ed25519-sha256")
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        DkimSigner(DkimSettings("example.org", "s1", path, algorithm))
    assert message in str(caught.value) and "delivery.dkim.private_key_file" in str(caught.value)
    assert "\n" not in str(caught.value)
