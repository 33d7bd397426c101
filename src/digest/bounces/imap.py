"""Poll a mailbox for bounce reports over IMAP (imaplib): every message in ``folder`` is read,
handed on, then moved to ``processed_folder`` (created when missing), or deleted when
``delete_processed`` says so. A message whose handling fails stays where it is."""

from __future__ import annotations

import contextlib
import imaplib
import ssl
from collections.abc import Callable

from digest.bounces.config import ImapConfig
from digest.bounces.events import BounceError
from digest.bounces.intake import Report


def _quote(mailbox: str) -> str:
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


def connect(config: ImapConfig) -> imaplib.IMAP4:
    where = f"bounces.imap: {config.host}:{config.port}"
    try:
        client: imaplib.IMAP4
        if config.security == "ssl":
            client = imaplib.IMAP4_SSL(
                config.host, config.port, ssl_context=ssl.create_default_context(),
                timeout=config.timeout,
            )  # fmt: skip
        else:
            client = imaplib.IMAP4(config.host, config.port, timeout=config.timeout)
            if config.security == "starttls":
                client.starttls(ssl_context=ssl.create_default_context())
        client.login(config.username, config.password.get_secret_value())
    except imaplib.IMAP4.error as exc:
        raise BounceError(f"{where}: login refused for {config.username!r}: {_said(exc)}") from None
    except (OSError, ssl.SSLError) as exc:
        raise BounceError(f"{where}: cannot connect: {exc}") from None
    return client


def poll(config: ImapConfig, handle: Callable[[Report], None]) -> int:
    """Read every message in the folder once; returns how many were processed."""
    client = connect(config)
    where = f"bounces.imap: {config.host}:{config.port} {config.folder}"
    try:
        status, _ = client.select(_quote(config.folder))
        if status != "OK":
            raise BounceError(f"{where}: no such folder")
        if not config.delete_processed:
            client.create(_quote(config.processed_folder))  # NO when it exists: fine
        status, found = client.uid("SEARCH", "ALL")
        uids = found[0].decode().split() if status == "OK" and found and found[0] else []
        done = 0
        for uid in uids:
            data = _fetch(client, uid)
            if data is None:
                continue
            handle(Report(f"imap:{config.folder}/{uid}", data))
            _file_away(client, uid, config)
            done += 1
        if done:
            client.expunge()
        return done
    except imaplib.IMAP4.error as exc:
        raise BounceError(f"{where}: {_said(exc)}") from None
    except OSError as exc:
        raise BounceError(f"{where}: connection lost: {exc}") from None
    finally:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            client.logout()


def _fetch(client: imaplib.IMAP4, uid: str) -> bytes | None:
    status, parts = client.uid("FETCH", uid, "(BODY.PEEK[])")
    if status != "OK":
        return None
    for part in parts:
        if isinstance(part, tuple) and len(part) == 2 and isinstance(part[1], bytes):
            return part[1]
    return None


def _file_away(client: imaplib.IMAP4, uid: str, config: ImapConfig) -> None:
    if config.delete_processed:
        client.uid("STORE", uid, "+FLAGS.SILENT", r"(\Deleted)")
        return
    target = _quote(config.processed_folder)
    if "MOVE" in client.capabilities:  # RFC 6851: one atomic step
        status, _ = client.uid("MOVE", uid, target)
        if status == "OK":
            return
    status, detail = client.uid("COPY", uid, target)
    if status != "OK":
        raise BounceError(
            f"bounces.imap: cannot move a message to {config.processed_folder!r}: {detail}"
        )
    client.uid("STORE", uid, "+FLAGS.SILENT", r"(\Deleted)")


def _said(exc: Exception) -> str:
    text = str(exc)
    return text[2:-1] if text.startswith(("b'", 'b"')) else text
