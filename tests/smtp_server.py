"""A real SMTP server for delivery tests: aiosmtpd on 127.0.0.1 with per-recipient faults.

:class:`SmtpServer` records every message it accepted (``received``) and every DATA it saw,
accepted or not (``attempts``), so tests can count messages per recipient and compare the
Message-IDs of a first attempt and its retry. Faults (each for the recipients named):

- ``mail_reject = "550 ..."``: the reply to every MAIL FROM (a refused sender), until unset;
- ``rcpt_reject[addr] = "550 ..."``: the reply to RCPT TO, every time;
- ``data_fail_once[addr] = "451 ..."``: the reply to the final dot, the first time only;
- ``drop_after_dot``: the data arrives, then the connection is cut with no reply (once);
- ``disconnect_after``: once that many messages were accepted, the next MAIL FROM gets
  ``421`` and the connection is closed (once);
- ``stall_at_dot``: the data arrives and the reply is held back until ``release`` is set
  (for killing a sender while it waits for the final reply);
- ``credentials=(user, password)``: AUTH is required (over plain TCP) and checked.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.conftest import CliRunner, Site


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])


@dataclass
class Faults:
    mail_reject: str | None = None
    rcpt_reject: dict[str, str] = field(default_factory=dict)
    data_fail_once: dict[str, str] = field(default_factory=dict)
    drop_after_dot: set[str] = field(default_factory=set)
    disconnect_after: int | None = None
    stall_at_dot: set[str] = field(default_factory=set)
    release: threading.Event = field(default_factory=threading.Event)


class Handler:
    def __init__(self, faults: Faults, pipelining: bool = True) -> None:
        self.faults = faults
        self.pipelining = pipelining
        self.received: list[Received] = []
        self.attempts: list[Received] = []
        self.lock = threading.Lock()

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if self.pipelining:  # aiosmtpd reads pipelined commands fine but does not say so
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        with self.lock:
            limit = self.faults.disconnect_after
            cut = limit is not None and len(self.received) >= limit
            if cut:
                self.faults.disconnect_after = None
        if cut:
            await server.push("421 4.3.2 service shutting down")
            server.transport.abort()
            return "421 4.3.2 service shutting down"
        if self.faults.mail_reject:
            return self.faults.mail_reject
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        reply = self.faults.rcpt_reject.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = Received(envelope.mail_from, tuple(envelope.rcpt_tos), bytes(envelope.content))
        with self.lock:
            self.attempts.append(message)
            for rcpt in message.rcpt_tos:
                reply = self.faults.data_fail_once.pop(rcpt, None)
                if reply:
                    return reply
            stalled = bool(self.faults.stall_at_dot & set(message.rcpt_tos))
            dropped = bool(self.faults.drop_after_dot & set(message.rcpt_tos))
            self.faults.drop_after_dot -= set(message.rcpt_tos)
            # A dropped connection after the dot: the server may well have kept the message.
            self.received.append(message)
        while stalled and not self.faults.release.is_set():
            await asyncio.sleep(0.01)
        if dropped:
            server.transport.abort()
            return "250 never seen by the client"
        return "250 OK queued"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class SmtpServer:
    def __init__(
        self,
        faults: Faults | None = None,
        credentials: tuple[str, str] | None = None,
        pipelining: bool = True,
    ) -> None:
        self.faults = faults or Faults()
        self.handler = Handler(self.faults, pipelining)
        self.credentials = credentials
        self.port = free_port()
        self.controller: Controller | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> SmtpServer:
        kwargs: dict[str, Any] = {}
        if self.credentials is not None:
            kwargs = {
                "authenticator": self._authenticate,
                "auth_require_tls": False,
                "auth_required": True,
            }
        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, ready_timeout=10, **kwargs
        )
        self.controller.start()
        return self

    def stop(self) -> None:
        self.faults.release.set()
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and self.credentials is not None
            and (data.login.decode(), data.password.decode()) == self.credentials
        )
        return AuthResult(success=ok, handled=False)

    # -- what arrived -----------------------------------------------------------------------

    @property
    def received(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.received)

    @property
    def attempts(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.attempts)

    def per_recipient(self) -> Counter[str]:
        return Counter(rcpt for message in self.received for rcpt in message.rcpt_tos)

    def wait_for(self, count: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.received)} of {count} messages arrived")
            time.sleep(0.01)


@contextmanager
def running(
    faults: Faults | None = None,
    credentials: tuple[str, str] | None = None,
    pipelining: bool = True,
) -> Iterator[SmtpServer]:
    server = SmtpServer(faults, credentials, pipelining).start()
    try:
        yield server
    finally:
        server.stop()


def use_smtp(
    config: Path,
    port: int,
    *,
    connections: int = 2,
    rate_limit: float = 0,
    username: str = "",
    password: str = "",
    retry: dict[str, Any] | None = None,
    edit: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """Point a site's config at the test server (plain SMTP, tiny retry backoff)."""
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["delivery"]["transport"] = "smtp"
    data["delivery"]["smtp"] = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "username": username,
        "password": password,
        "connections": connections,
        "rate_limit": rate_limit,
        "timeout": 10,
    }
    data["delivery"]["retry"] = {"base_seconds": 0.05, "max_seconds": 0.2, **(retry or {})}
    if edit is not None:
        edit(data)
    config.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def subscribers_csv(count: int, *, digests: str = "weekly", domain: str = "example.net") -> str:
    lines = ["email,name,digests"]
    lines += [f"user{n:04d}@{domain},User {n},{digests}" for n in range(count)]
    return "\n".join(lines) + "\n"


def no_defects(message: EmailMessage) -> list[str]:
    """Every defect the parser found in the message, its parts and its headers."""
    found: list[str] = []
    for part in message.walk():
        found += [repr(defect) for defect in part.defects]
        for name, value in part.items():
            found += [f"{name}: {defect!r}" for defect in getattr(value, "defects", ())]
    return found


def import_subscribers(site: Site, cli: CliRunner, text: str) -> None:
    """``digest subscribers import`` of ``text`` (CSV) into the site; must succeed."""
    path = site.write("subs.csv", text)
    result = cli("-c", site.config, "subscribers", "import", path)
    assert result.code == 0, result.err
