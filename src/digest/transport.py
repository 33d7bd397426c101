"""Transports hand one message to the outside: SMTP, a maildir, or memory (tests only).

One small interface: ``Transport.connect()`` gives a :class:`Connection` whose ``send`` either
returns (accepted) or raises one of the outcomes below. ``before_payload`` is called right
before the message data leaves: the deliverer records that moment, so a crash afterwards is
reported as *in doubt* instead of silently sending twice.
"""

from __future__ import annotations

import contextlib
import os
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from digest.errors import DeliveryError
from digest.message import DotStuffed, dot_stuff
from digest.smtp_client import Deadlines, DeadlineSMTP

if TYPE_CHECKING:  # annotations only: a sender process need not load the config schema
    from digest.config import DeliveryConfig, LoadedConfig, SmtpConfig


class TransportOutcome(Exception):
    """A per-message outcome other than success."""


class TemporaryFailure(TransportOutcome):
    """4xx: try this recipient again later."""


class PermanentFailure(TransportOutcome):
    """5xx: this recipient will not get it."""


class SenderRefused(TransportOutcome):
    """5xx at MAIL FROM: the server refuses the sender, not this recipient. Nobody is to be
    charged for it: the issue pauses until the sender (address, domain, account) is fixed."""


class ConnectionLost(TransportOutcome):
    """The connection broke (or the server said 421) before the message data was sent:
    nothing was delivered; reconnect and send it again."""


class OutcomeUnknown(TransportOutcome):
    """The data was handed over but no final reply came: it may or may not be delivered."""


class ConnectFailed(DeliveryError):
    """The server cannot be reached: nothing can be sent now."""


class AuthenticationFailed(DeliveryError):
    """The server refused our credentials: pause, fix, resume."""


class Connection(Protocol):
    def send(
        self, sender: str, recipient: str, message: bytes, before_payload: Callable[[], None]
    ) -> None: ...

    def close(self) -> None: ...


class Transport(Protocol):
    def connect(self) -> Connection: ...


# -- SMTP ---------------------------------------------------------------------------------------


class SmtpTransport:
    takes_dot_stuffed = True  # build messages dot-stuffed: most of it is done once per issue

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self.deadlines = Deadlines(command=config.timeout, message=config.message_timeout)

    def connect(self) -> SmtpConnection:
        config = self.config
        where = f"SMTP server {config.host}:{config.port}"
        try:
            tls = ssl.create_default_context() if config.security == "ssl" else None
            smtp = DeadlineSMTP(config.host, config.port, self.deadlines, context=tls)
            smtp.ehlo()
            if config.security == "starttls":
                # Always a verifying context: starttls() without one checks no certificate.
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if config.username:
                smtp.login(config.username, config.password.get_secret_value())
        except smtplib.SMTPAuthenticationError as exc:
            raise AuthenticationFailed(
                f"{where} refused the login for {config.username!r}: {exc.smtp_code} "
                f"{_text(exc.smtp_error)}"
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise ConnectFailed(f"{where}: {exc}") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise ConnectFailed(f"cannot connect to {where}: {exc or type(exc).__name__}") from None
        return SmtpConnection(smtp)


_STAGES = (("MAIL FROM", (250,)), ("RCPT TO", (250, 251)), ("DATA", (354,)))


class SmtpConnection:
    def __init__(self, smtp: DeadlineSMTP) -> None:
        self.smtp = smtp
        # RFC 2920: MAIL, RCPT and DATA in one write, three replies read back. Saves two
        # round trips per message; the data itself still waits for the 354.
        self.pipelining = smtp.has_extn("pipelining")

    def send(
        self, sender: str, recipient: str, message: bytes, before_payload: Callable[[], None]
    ) -> None:
        self.smtp.start_message()  # MAIL FROM to the last reply: one deadline
        try:
            self._send(sender, recipient, message, before_payload)
        finally:
            self.smtp.end_message()

    def _send(
        self, sender: str, recipient: str, message: bytes, before_payload: Callable[[], None]
    ) -> None:
        smtp = self.smtp
        try:
            commands = [
                f"MAIL FROM:<{sender}>\r\n".encode("ascii"),
                f"RCPT TO:<{recipient}>\r\n".encode("ascii"),
                b"DATA\r\n",
            ]
        except UnicodeEncodeError:
            raise PermanentFailure(
                f"{sender} -> {recipient}: non-ASCII address (SMTPUTF8 is not used)"
            ) from None
        replies: list[tuple[int, bytes]] = []
        try:
            if self.pipelining:
                smtp.send(b"".join(commands))
                replies = [smtp.getreply() for _ in commands]
            else:
                for command, (_, ok) in zip(commands, _STAGES, strict=True):
                    smtp.send(command)
                    replies.append(smtp.getreply())
                    if replies[-1][0] not in ok:
                        break
            for response, (stage, ok) in zip(replies, _STAGES, strict=False):
                if response[0] not in ok:
                    self._refuse(response, stage, data_open=replies[-1][0] == 354)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise ConnectionLost(f"connection lost before the message was sent: {exc}") from None
        try:
            before_payload()
        except BaseException:
            self._drop()  # the server waits for data that will not come: no QUIT, just close
            raise
        payload = message if isinstance(message, DotStuffed) else dot_stuff(message)
        if not payload.endswith(b"\r\n"):
            payload += b"\r\n"
        try:
            smtp.send(payload + b".\r\n")
            code, reply = smtp.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise OutcomeUnknown(
                f"no reply after the message data: {exc or 'connection closed'}"
            ) from None
        if code == 250:
            return
        if code == 421:
            self._drop()
        text = f"{code} {_text(reply)} (after DATA)"
        if 400 <= code < 500:
            raise TemporaryFailure(text)
        raise PermanentFailure(text)

    def _refuse(self, response: tuple[int, bytes], stage: str, *, data_open: bool) -> None:
        """The server refused a step before the data: raise the outcome for it. A server
        that answered 354 all the same (pipelined, after refusing the recipient) gets an
        empty message ended at once, then RSET."""
        code, reply = response
        text = f"{code} {_text(reply)} (at {stage})"
        if code == 421 or code == -1:
            self._drop()
            raise ConnectionLost(text)
        try:
            if data_open:
                self.smtp.send(b".\r\n")
                self.smtp.getreply()
            self.smtp.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()
        if 400 <= code < 500:
            raise TemporaryFailure(text)
        if stage == "MAIL FROM":
            raise SenderRefused(text)
        raise PermanentFailure(text)

    def _drop(self) -> None:
        with contextlib.suppress(OSError):
            self.smtp.close()

    def close(self) -> None:
        try:
            self.smtp.quit()
        except (smtplib.SMTPException, OSError):
            self._drop()


def _text(reply: bytes | str) -> str:
    value = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(value.split())


# -- maildir ------------------------------------------------------------------------------------


class MaildirTransport:
    """Writes each message as a file into ``path/new`` (tmp + rename, as maildir wants)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._counter = 0
        self._lock = threading.Lock()

    def connect(self) -> MaildirConnection:
        try:
            for sub in ("tmp", "new", "cur"):
                (self.path / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConnectFailed(f"maildir {self.path}: {exc.strerror}") from None
        return MaildirConnection(self)

    def unique_name(self) -> str:
        with self._lock:
            self._counter += 1
            counter = self._counter
        return f"{time.time_ns()}.P{os.getpid()}Q{counter}.{socket.gethostname()}"


class MaildirConnection:
    def __init__(self, transport: MaildirTransport) -> None:
        self.transport = transport

    def send(
        self, sender: str, recipient: str, message: bytes, before_payload: Callable[[], None]
    ) -> None:
        name = self.transport.unique_name()
        tmp = self.transport.path / "tmp" / name
        header = f"Return-Path: <{sender}>\r\nDelivered-To: {recipient}\r\n".encode()
        try:
            tmp.write_bytes(header + message)
            before_payload()
            tmp.rename(self.transport.path / "new" / name)
        except OSError as exc:
            raise TemporaryFailure(f"maildir write failed: {exc.strerror}") from None

    def close(self) -> None:
        pass


# -- memory (unit tests) -------------------------------------------------------------------------


@dataclass
class MemoryTransport:
    """Keeps messages in a list; ``fail`` may raise an outcome for a recipient."""

    sent: list[tuple[str, str, bytes]] = field(default_factory=list)
    fail: Callable[[str], None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def connect(self) -> MemoryConnection:
        return MemoryConnection(self)


class MemoryConnection:
    def __init__(self, transport: MemoryTransport) -> None:
        self.transport = transport

    def send(
        self, sender: str, recipient: str, message: bytes, before_payload: Callable[[], None]
    ) -> None:
        if self.transport.fail:
            self.transport.fail(recipient)
        before_payload()
        with self.transport._lock:
            self.transport.sent.append((sender, recipient, message))

    def close(self) -> None:
        pass


def transport_for(delivery: DeliveryConfig, resolve: Callable[[str], Path]) -> Transport:
    """The transport the config names; ``resolve`` makes a relative maildir path absolute."""
    if delivery.transport == "smtp":
        return SmtpTransport(delivery.smtp)
    return MaildirTransport(resolve(delivery.maildir))


def default_transport(loaded: LoadedConfig) -> Transport:
    """The one factory of the configured transport (``digest send``, the scheduler, the staff
    and subscription pages)."""
    return transport_for(loaded.config.delivery, loaded.resolve)
