"""DKIM signatures (RFC 6376; Ed25519: RFC 8463) for every message, once, after the splice.

dkimpy does the DKIM part (parsing the header block, relaxed canonicalisation, folding, the
header hash in the order RFC 6376 5.4 wants); the private-key operation runs in OpenSSL
through ``cryptography``: dkimpy's own pure-Python RSA costs ~7 ms per message, OpenSSL's ~1 ms,
and at thousands of recipients that is the sender's speed. Tests verify what we sign with
dkimpy's verifier against the DNS record :meth:`DkimSigner.dns_record` prints.

``c=relaxed/simple``: headers relaxed (relays refold them), body simple: our body has CRLF line
ends, so its hash is the SHA-256 of the bytes as they are.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import dkim
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from dkim.canonicalization import CanonicalizationPolicy

from digest.bounces.config import DkimConfig
from digest.errors import ConfigError

RSA_SHA256, ED25519_SHA256 = "rsa-sha256", "ed25519-sha256"
ALGORITHMS = (RSA_SHA256, ED25519_SHA256)
# What the signature covers (RFC 6376 5.4.1 and Gmail's bulk-sender rules: both
# List-Unsubscribe headers). A name listed once more than it occurs is "oversigned": nobody
# can add a second From or List-Unsubscribe without breaking the signature.
SIGNED_HEADERS = (
    "from", "to", "subject", "date", "message-id", "reply-to", "list-id", "list-unsubscribe",
    "list-unsubscribe-post", "mime-version", "content-type", "content-transfer-encoding",
)  # fmt: skip
OVERSIGNED = ("from", "subject", "list-unsubscribe", "list-unsubscribe-post")
_POLICY = CanonicalizationPolicy.from_c_value(b"relaxed/simple")
_MIN_RSA_BITS = 1024


@dataclass(frozen=True)
class DkimSettings:
    domain: str
    selector: str
    private_key_file: Path
    algorithm: str = RSA_SHA256


class DkimSigner:
    def __init__(self, settings: DkimSettings) -> None:
        if settings.algorithm not in ALGORITHMS:
            raise ConfigError(
                f"delivery.dkim.algorithm: {settings.algorithm!r} is not one of "
                f"{', '.join(ALGORITHMS)}"
            )
        self.settings = settings
        self.key = load_private_key(settings.private_key_file, settings.algorithm)
        self.domain = settings.domain.encode("ascii")
        self.selector = settings.selector.encode("ascii")
        self.algorithm = settings.algorithm.encode("ascii")

    def sign(self, message: bytes, now: datetime) -> bytes:
        """The message with its DKIM-Signature header in front. ``message`` must have CRLF
        line ends and must not be dot-stuffed (DKIM signs what the recipient reads)."""
        head, separator, body = message.partition(b"\r\n\r\n")
        headers, _ = dkim.rfc822_parse(head + b"\r\n\r\n")
        present = {name.lower() for name, _ in headers}
        include = [n.encode() for n in SIGNED_HEADERS if n.encode() in present]
        include += [n.encode() for n in OVERSIGNED if n.encode() in present]
        body_hash = base64.b64encode(hashlib.sha256(_POLICY.canonicalize_body(body)).digest())
        fields = [
            (b"v", b"1"),
            (b"a", self.algorithm),
            (b"c", b"relaxed/simple"),
            (b"d", self.domain),
            (b"s", self.selector),
            (b"t", str(int(now.timestamp())).encode("ascii")),
            (b"h", b" : ".join(include)),  # spaces: folding may break the list only there
            (b"bh", body_hash),
            (b"b", b"0" * 60),  # as dkimpy does: b= folds onto a line of its own
        ]
        unsigned = b"; ".join(b"=".join(f) for f in fields)
        unsigned = dkim.RE_BTAG.sub(
            b"\\1", dkim.fold(unsigned, namelen=len(b"DKIM-Signature"), linesep=b"\r\n")
        )
        hasher = hashlib.sha256()
        dkim.hash_headers(
            hasher,
            _POLICY,
            [_relaxed(name, value) for name, value in headers],
            include,
            (b"DKIM-Signature", b" " + unsigned),
            dict(fields),
        )
        fields[-1] = (b"b", base64.b64encode(self._sign_digest(hasher.digest())))
        value: bytes = dkim.fold(
            b"; ".join(b"=".join(f) for f in fields),
            namelen=len(b"DKIM-Signature"),
            linesep=b"\r\n",
        )
        return b"DKIM-Signature: " + value + b"\r\n" + head + separator + body

    def _sign_digest(self, digest: bytes) -> bytes:
        if isinstance(self.key, rsa.RSAPrivateKey):
            return self.key.sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
        return self.key.sign(digest)  # RFC 8463: Ed25519 over the SHA-256 of the headers

    @property
    def record_name(self) -> str:
        return f"{self.settings.selector}._domainkey.{self.settings.domain}"

    def dns_record(self) -> str:
        """The TXT record value to publish at :attr:`record_name`."""
        public = self.key.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            der = public.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}"

    def zone_line(self) -> str:
        """The record as a zone-file line, its value split in strings of <= 255 octets."""
        value = self.dns_record()
        chunks = " ".join(f'"{value[i : i + 255]}"' for i in range(0, len(value), 255))
        return f"{self.record_name}. IN TXT ( {chunks} )"


@functools.lru_cache(maxsize=512)
def _relaxed(name: bytes, value: bytes) -> tuple[bytes, bytes]:
    """One header, relaxed-canonicalised (dkimpy). Most headers are the same in every message
    of an issue (From, Subject, List-Id, the MIME headers): each is worked out once."""
    canonical: tuple[bytes, bytes] = _POLICY.canonicalize_headers([(name, value)])[0]
    return canonical


def load_private_key(path: Path, algorithm: str) -> rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey:
    """A PEM key (PKCS#1 or PKCS#8), or for Ed25519 also the base64 seed ``dknewkey`` writes."""
    where = f"delivery.dkim.private_key_file: {path}"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{where}: {exc.strerror}") from None
    key: object
    try:
        if b"-----BEGIN" in data:
            key = serialization.load_pem_private_key(data, password=None)
        else:
            seed = base64.b64decode(data.strip(), validate=True)
            key = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    except (ValueError, TypeError, UnsupportedAlgorithm, binascii.Error) as exc:
        raise ConfigError(f"{where}: not a private key ({exc})") from None
    if algorithm == RSA_SHA256 and isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < _MIN_RSA_BITS:
            raise ConfigError(f"{where}: RSA key of {key.key_size} bits; use 2048")
        return key
    if algorithm == ED25519_SHA256 and isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    raise ConfigError(f"{where}: the key does not fit algorithm {algorithm}")


def signer_for(config: DkimConfig | None, resolve: Callable[[str], Path]) -> DkimSigner | None:
    """The signer ``delivery.dkim`` asks for (None: not configured); ``resolve`` makes the key
    file's path absolute (relative to the config file)."""
    if config is None:
        return None
    return DkimSigner(
        DkimSettings(
            domain=config.domain,
            selector=config.selector,
            private_key_file=resolve(config.private_key_file),
            algorithm=config.algorithm,
        )
    )
