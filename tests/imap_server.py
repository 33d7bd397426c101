"""A real IMAP server for tests: Debian's dovecot run as a plain process (``dovecot -F`` with
a config of our own), one passwd-file user with a maildir, listening on 127.0.0.1 only.
Skips the test when dovecot is not installed (apt package ``dovecot-imapd``)."""

from __future__ import annotations

import contextlib
import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USER, PASSWORD = "bounces", "imap-test-secret"


@dataclass(frozen=True)
class ImapServer:
    host: str
    port: int
    username: str
    password: str

    def client(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4(self.host, self.port, timeout=10)
        client.login(self.username, self.password)
        return client

    def append(self, folder: str, data: bytes) -> None:
        client = self.client()
        try:
            client.create(f'"{folder}"')
            client.append(f'"{folder}"', None, None, data)
        finally:
            client.logout()

    def count(self, folder: str) -> int:
        client = self.client()
        try:
            status, data = client.select(f'"{folder}"', readonly=True)
            return int(data[0] or 0) if status == "OK" else -1
        finally:
            client.logout()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(root: Path, port: int, uid: int, gid: int) -> str:
    as_root = os.geteuid() == 0
    me = pwd.getpwuid(os.geteuid()).pw_name
    users = "" if as_root else f"default_internal_user = {me}\ndefault_login_user = {me}\n"
    return f"""base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = 1
mail_location = maildir:~/Maildir
{users}passdb {{
  driver = passwd-file
  args = scheme=PLAIN {root}/passwd
}}
userdb {{
  driver = passwd-file
  args = {root}/passwd
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


@contextlib.contextmanager
def running_dovecot() -> Iterator[ImapServer]:
    if not os.path.exists(DOVECOT):
        pytest.skip("dovecot is not installed (Debian package dovecot-imapd)")
    # Mail is owned by an unprivileged user when we are root (dovecot refuses uid 0), so the
    # folder must be reachable for it: not under pytest's private tmp_path.
    root = Path(tempfile.mkdtemp(prefix="digest-dovecot-"))
    root.chmod(0o755)
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        uid, gid = nobody.pw_uid, nobody.pw_gid
    else:
        uid, gid = os.geteuid(), os.getegid()
    home = root / "home"
    home.mkdir()
    os.chown(home, uid, gid)
    (root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}:{uid}:{gid}::{home}::\n")
    port = _free_port()
    (root / "dovecot.conf").write_text(_config(root, port, uid, gid))
    process = subprocess.Popen(
        [DOVECOT, "-F", "-c", str(root / "dovecot.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                log = (root / "dovecot.log").read_text() if (root / "dovecot.log").exists() else ""
                error = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"dovecot did not start: {error} {log}")
            time.sleep(0.1)
        yield ImapServer("127.0.0.1", port, USER, PASSWORD)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(root, ignore_errors=True)
