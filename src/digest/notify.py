"""Mail to staff when a scheduled send needs a person: held by error findings, paused, or
failed. Goes to ``delivery.notify`` (else ``web.staff_email``) through the configured
transport; without either address it is only logged."""

from __future__ import annotations

import logging
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from digest.config import LoadedConfig
from digest.errors import DigestError
from digest.headers import single_line
from digest.message import envelope_sender, sender_domain
from digest.transport import Transport, TransportOutcome, default_transport

log = logging.getLogger("digest.run")


def held_subject(loaded: LoadedConfig, digest: str, period: str) -> str:
    t = loaded.translator
    return t.gettext("%(digest)s: issue %(period)s held", digest=digest, period=period)


def paused_subject(loaded: LoadedConfig, digest: str, period: str) -> str:
    t = loaded.translator
    return t.gettext("%(digest)s: sending issue %(period)s paused", digest=digest, period=period)


def failed_subject(loaded: LoadedConfig, digest: str, period: str) -> str:
    return loaded.translator.gettext("%(digest)s: send failed", digest=digest)


def held_hint(loaded: LoadedConfig, digest: str) -> str:
    return loaded.translator.gettext(
        "Fix the findings ('digest check %(digest)s'); the next run then sends the issue. "
        "'digest send %(digest)s --force' sends it anyway.",
        digest=digest,
    )


def staff_addresses(loaded: LoadedConfig) -> list[str]:
    delivery, web = loaded.config.delivery, loaded.config.web
    address = delivery.notify or web.staff_email
    return [address] if address else []


def notify_staff(
    loaded: LoadedConfig,
    digest: str,
    subject: str,
    details: str,
    now: datetime,
    transport: Transport | None = None,
) -> bool:
    """Mail ``details`` to the staff address; False if there is none or the mail failed
    (logged: a notice must never stop the scheduler)."""
    addresses = staff_addresses(loaded)
    if not addresses:
        return False
    message = EmailMessage()
    message["From"] = loaded.config.delivery.from_
    message["To"] = ", ".join(addresses)
    message["Subject"] = single_line(subject)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid("notify", domain=sender_domain(loaded.config.delivery))
    message["Auto-Submitted"] = "auto-generated"
    body = loaded.translator.gettext(
        "The scheduled send of “%(title)s” needs you.\n\n%(details)s\n\n"
        "Overview: 'digest status' or the dashboard of 'digest serve'.\n",
        title=loaded.digest(digest).title,
        details=details,
    )
    message.set_content(body)
    data = message.as_bytes()
    try:
        connection = (transport or default_transport(loaded)).connect()
        try:
            for address in addresses:
                connection.send(envelope_sender(loaded.config.delivery), address, data, _noop)
        finally:
            connection.close()
    except (TransportOutcome, DigestError, OSError) as exc:
        log.error("%s: could not notify %s: %s", digest, ", ".join(addresses), exc)
        return False
    log.info("%s: notified %s: %s", digest, ", ".join(addresses), subject)
    return True


def _noop() -> None:
    return None
