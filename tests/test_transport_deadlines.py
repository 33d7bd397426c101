"""SMTP deadlines and sender refusals, against a scripted SMTP server on a real socket.

smtplib's timeout applies to each read: a server trickling one byte at a time never trips it.
The server here answers each command from a script and can trickle any reply byte by byte.
"""

from __future__ import annotations

import contextlib
import shutil
import smtplib
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from digest.config import SmtpConfig
from digest.smtp_client import Deadlines, DeadlineSMTP
from digest.transport import (
    ConnectFailed,
    ConnectionLost,
    OutcomeUnknown,
    PermanentFailure,
    SenderRefused,
    SmtpTransport,
)

Reply = Callable[[socket.socket], None]


def say(line: str, delay: float = 0.0) -> Reply:
    def reply(conn: socket.socket) -> None:
        time.sleep(delay)
        conn.sendall(line.encode() + b"\r\n")

    return reply


def trickle(line: str, every: float = 0.2) -> Reply:
    """One byte of the reply at a time: each read succeeds, the reply never ends in time."""

    def reply(conn: socket.socket) -> None:
        for byte in (line + "\r\n").encode():
            conn.sendall(bytes([byte]))
            time.sleep(every)

    return reply


class ScriptedServer:
    """Accepts one connection; greets, then answers each command (or the data, after DATA)
    by the first rule whose verb starts the line."""

    def __init__(self, greeting: Reply, rules: dict[str, Reply]) -> None:
        self.greeting = greeting
        self.rules = rules
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.commands: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            try:
                self.greeting(conn)
                reader = conn.makefile("rb")
                in_data = False
                for raw in reader:
                    line = raw.decode("ascii", "replace").rstrip("\r\n")
                    if in_data:
                        if line == ".":
                            in_data = False
                            self.commands.append("<data>")
                            self.rules.get("<data>", say("250 OK"))(conn)
                        continue
                    self.commands.append(line)
                    key = line.split(":")[0].split(" ")[0].upper()
                    self.rules.get(key, say("250 OK"))(conn)
                    if key == "DATA":
                        in_data = True
                    if key == "QUIT":
                        return
            except OSError:
                return  # the client hung up: what a deadline does

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.listener.close()
        self.thread.join(timeout=10)


def transport(port: int, timeout: float = 1.0, message_timeout: float = 30.0) -> SmtpTransport:
    config = SmtpConfig(
        host="127.0.0.1", port=port, security="none", timeout=timeout,
        message_timeout=message_timeout,
    )  # fmt: skip
    return SmtpTransport(config)


EHLO = say("250-localhost\r\n250 8BITMIME")
DATA_GO = say("354 go ahead")


@contextmanager
def timed(limit: float) -> Iterator[None]:
    started = time.monotonic()
    yield
    assert time.monotonic() - started < limit


def test_a_trickled_greeting_fails_the_connect_at_the_deadline() -> None:
    greeting = trickle("220 slow.example ESMTP " + "x" * 40)
    with ScriptedServer(greeting, {}) as server, timed(3.0), pytest.raises(ConnectFailed) as caught:
        transport(server.port, timeout=1.0).connect()
    assert "no complete reply within 1 s" in str(caught.value)


def test_a_trickled_final_reply_is_in_doubt_at_the_deadline() -> None:
    rules = {"EHLO": EHLO, "DATA": DATA_GO, "<data>": trickle("250 queued as " + "x" * 40)}
    with ScriptedServer(say("220 ok"), rules) as server:
        connection = transport(server.port, timeout=1.0).connect()
        handed_over: list[bool] = []
        with timed(3.0), pytest.raises(OutcomeUnknown):
            connection.send(
                "a@example.org", "b@example.org", b"Subject: x\r\n\r\nhi\r\n",
                lambda: handed_over.append(True),
            )  # fmt: skip
        connection.close()
    assert handed_over == [True]


def test_one_message_has_one_deadline_however_prompt_each_reply_is() -> None:
    slow = say("250 OK", delay=0.4)  # each reply well inside the 1 s per command
    rules = {"EHLO": EHLO, "MAIL": slow, "RCPT": slow, "DATA": say("354 go", delay=0.4)}
    with ScriptedServer(say("220 ok"), rules) as server:
        connection = transport(server.port, timeout=1.0, message_timeout=1.0).connect()
        with timed(3.0), pytest.raises(ConnectionLost) as caught:
            connection.send("a@example.org", "b@example.org", b"Subject: x\r\n\r\n", lambda: None)
        connection.close()
    assert "the message took over 1 s" in str(caught.value)


def test_550_at_mail_from_is_a_sender_refusal_not_a_recipient_failure() -> None:
    rules = {"EHLO": EHLO, "MAIL": say("550 5.7.1 sender domain not allowed")}
    with ScriptedServer(say("220 ok"), rules) as server:
        connection = transport(server.port).connect()
        with pytest.raises(SenderRefused) as caught:
            connection.send("a@example.org", "b@example.org", b"Subject: x\r\n\r\n", lambda: None)
        connection.close()
    assert not isinstance(caught.value, PermanentFailure)
    assert "550 5.7.1 sender domain not allowed (at MAIL FROM)" in str(caught.value)
    assert [c.upper() for c in server.commands[-2:]] == ["RSET", "QUIT"]


def test_550_at_rcpt_stays_that_recipients_permanent_failure() -> None:
    rules = {"EHLO": EHLO, "RCPT": say("550 5.1.1 no such user")}
    with ScriptedServer(say("220 ok"), rules) as server:
        connection = transport(server.port).connect()
        with pytest.raises(PermanentFailure):
            connection.send("a@example.org", "b@example.org", b"Subject: x\r\n\r\n", lambda: None)
        connection.close()


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return key, cert


@pytest.mark.parametrize("mode", ["ssl", "starttls"])
def test_deadlines_hold_over_tls_and_after_starttls(
    certificate: tuple[Path, Path], mode: str
) -> None:
    key, cert = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    client_tls = ssl.create_default_context(cafile=str(cert))
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        sock: socket.socket = (
            server_tls.wrap_socket(conn, server_side=True) if mode == "ssl" else conn
        )
        sock.sendall(b"220 ok\r\n")
        reader = sock.makefile("rb")
        with contextlib.suppress(OSError):
            while line := reader.readline():  # the reader changes after STARTTLS
                verb = line.split()[0].upper()
                if verb == b"EHLO":
                    sock.sendall(b"250-localhost\r\n250 STARTTLS\r\n")
                elif verb == b"STARTTLS":
                    sock.sendall(b"220 go ahead\r\n")
                    sock = server_tls.wrap_socket(sock, server_side=True)
                    reader = sock.makefile("rb")
                elif verb == b"NOOP":
                    for byte in b"250 trickled\r\n":  # never complete in time
                        sock.sendall(bytes([byte]))
                        time.sleep(0.2)
                else:
                    sock.sendall(b"250 OK\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    deadlines = Deadlines(command=1.0, message=10.0)
    context = client_tls if mode == "ssl" else None
    smtp = DeadlineSMTP("localhost", port, deadlines, context=context)
    smtp.ehlo()
    if mode == "starttls":
        assert smtp.starttls(context=client_tls)[0] == 220
        smtp.ehlo()
    assert smtp.rset()[0] == 250
    started = time.monotonic()
    with pytest.raises(smtplib.SMTPServerDisconnected, match="no complete reply within 1 s"):
        smtp.noop()
    assert time.monotonic() - started < 2.5
    listener.close()
    thread.join(timeout=10)
