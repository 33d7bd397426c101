"""Mail to staff when a scheduled send needs a person: held by error findings, paused, or
failed. Goes to ``delivery.notify`` (else ``web.staff_email``) through the configured
transport; without either address it is only logged."""

from __future__ import annotations

import logging
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from babel import Locale

from digest.config import LoadedConfig
from digest.errors import DigestError
from digest.headers import single_line
from digest.message import envelope_sender, sender_domain
from digest.transport import Transport, TransportOutcome, default_transport

log = logging.getLogger("digest.run")

TEXTS: dict[str, dict[str, str]] = {
    "de": {
        "held": "{digest}: Ausgabe {period} zurückgehalten",
        "paused": "{digest}: Versand der Ausgabe {period} angehalten",
        "failed": "{digest}: Versand fehlgeschlagen",
        "body": "Der geplante Versand von „{title}“ braucht Ihre Hilfe.\n\n{details}\n\n"
        "Übersicht: 'digest status' oder das Dashboard von 'digest serve'.\n",
        "held_hint": "Beheben Sie die Befunde ('digest check {digest}'); der nächste Lauf "
        "sendet die Ausgabe dann. 'digest send {digest} --force' sendet sie trotzdem.",
    },
    "en": {
        "held": "{digest}: issue {period} held",
        "paused": "{digest}: sending issue {period} paused",
        "failed": "{digest}: send failed",
        "body": "The scheduled send of “{title}” needs you.\n\n{details}\n\n"
        "Overview: 'digest status' or the dashboard of 'digest serve'.\n",
        "held_hint": "Fix the findings ('digest check {digest}'); the next run then sends the "
        "issue. 'digest send {digest} --force' sends it anyway.",
    },
}


def notify_texts(locale: str) -> dict[str, str]:
    return TEXTS.get(Locale.parse(locale).language, TEXTS["en"])


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
    texts = notify_texts(loaded.config.site.locale)
    message = EmailMessage()
    message["From"] = loaded.config.delivery.from_
    message["To"] = ", ".join(addresses)
    message["Subject"] = single_line(subject)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid("notify", domain=sender_domain(loaded.config.delivery))
    message["Auto-Submitted"] = "auto-generated"
    title = loaded.digest(digest).title
    message.set_content(texts["body"].format(title=title, details=details))
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
