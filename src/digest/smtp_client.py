"""smtplib with deadlines: a server may not hold a sender by answering slowly.

smtplib's ``timeout`` applies to each read of the socket: a server that trickles one byte
every few seconds never trips it, at the greeting or while the final reply is awaited, and
``digest send`` would wait forever. Here every command (the greeting included) must have its
complete reply within :attr:`Deadlines.command` seconds, and one message, MAIL FROM to the
reply after its data, within :attr:`Deadlines.message`. A missed deadline is a
``TimeoutError`` inside smtplib, which closes the connection and raises
``SMTPServerDisconnected``: the transport maps that to its outcomes as for any lost connection.
"""

from __future__ import annotations

import math
import smtplib
import socket
import ssl
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

    _Address = tuple[Any, ...] | str | ReadableBuffer | None

_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Deadlines:
    """Seconds for one command's reply, and for one whole message."""

    command: float
    message: float


class _Clock:
    """The deadline the next reads and writes must meet."""

    def __init__(self, deadlines: Deadlines) -> None:
        self.deadlines = deadlines
        self.message_ends = math.inf
        self.ends = math.inf
        self.missed = ""

    def start_command(self) -> None:
        command_ends = time.monotonic() + self.deadlines.command
        if command_ends <= self.message_ends:
            self.ends = command_ends
            self.missed = f"no complete reply within {self.deadlines.command:g} s"
        else:
            self.ends = self.message_ends
            self.missed = f"the message took over {self.deadlines.message:g} s"

    def start_message(self) -> None:
        self.message_ends = time.monotonic() + self.deadlines.message

    def end_message(self) -> None:
        self.message_ends = math.inf

    def remaining(self) -> float:
        left = self.ends - time.monotonic()
        if left <= 0:
            raise TimeoutError(self.missed)
        return left


class _Reader:
    """``readline`` for smtplib's replies, reading the socket until the deadline only."""

    def __init__(self, sock: socket.socket, clock: _Clock) -> None:
        self.sock = sock
        self.clock = clock
        self.buffer = b""

    def readline(self, limit: int = -1) -> bytes:
        while True:
            end = self.buffer.find(b"\n")
            if end >= 0 and (limit < 0 or end < limit):
                line, self.buffer = self.buffer[: end + 1], self.buffer[end + 1 :]
                return line
            if 0 <= limit <= len(self.buffer):
                line, self.buffer = self.buffer[:limit], self.buffer[limit:]
                return line
            self.sock.settimeout(self.clock.remaining())
            try:
                chunk = self.sock.recv(_CHUNK)
            except TimeoutError:
                raise TimeoutError(self.clock.missed) from None
            if not chunk:
                line, self.buffer = self.buffer, b""
                return line
            self.buffer += chunk

    def close(self) -> None:
        pass  # the socket is smtplib's to close


class DeadlineSMTP(smtplib.SMTP):
    """``smtplib.SMTP`` whose replies must arrive in time; with ``context``, SMTP over TLS
    from the first byte (what ``smtplib.SMTP_SSL`` does)."""

    file: _Reader | None

    def __init__(
        self, host: str, port: int, deadlines: Deadlines, context: ssl.SSLContext | None = None
    ) -> None:
        self.clock = _Clock(deadlines)
        self.tls_context = context
        super().__init__(host, port, timeout=deadlines.command)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock: socket.socket = super()._get_socket(host, port, timeout)  # type: ignore[misc]
        if self.tls_context is None:
            return sock
        return self.tls_context.wrap_socket(sock, server_hostname=host)

    def connect(
        self, host: str = "localhost", port: int = 0, source_address: _Address = None
    ) -> tuple[int, bytes]:
        self.clock.start_command()  # the greeting is the first reply
        return super().connect(host, port, source_address)

    def send(self, s: ReadableBuffer | str) -> None:
        self.clock.start_command()
        if self.sock is not None:
            self.sock.settimeout(self.clock.remaining())  # sendall: one deadline for all of it
        super().send(s)

    def getreply(self) -> tuple[int, bytes]:
        if self.file is None and self.sock is not None:
            self.file = _Reader(self.sock, self.clock)
        return super().getreply()

    def start_message(self) -> None:
        self.clock.start_message()

    def end_message(self) -> None:
        self.clock.end_message()
