"""Bounce and complaint messages -> :class:`FeedbackEvent` values.

Which recipients failed: ``flufl.bounce`` (Mailman's detectors), which reads RFC 3464 DSNs and
the formats MTAs write instead (Exim's ``X-Failed-Recipients``, qmail's QSBMF, Yahoo, old
Exchange, ...). How they failed: our own reading of the RFC 3464 per-recipient fields
(``Action``, ``Status``, ``Diagnostic-Code``), or, for the other formats, the status code next
to the address in the text. Complaints: RFC 5965 ARF reports
(``multipart/report; report-type=feedback-report``).
"""

from __future__ import annotations

import email
import email.policy
import logging
import re
from dataclasses import dataclass, replace
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses, parseaddr

from flufl.bounce import all_failures

from digest.bounces.events import (
    COMPLAINT,
    DELAYED,
    HARD,
    FeedbackEvent,
    kind_for_status,
    one_line,
    status_code,
)

# The detectors log every step at INFO and each of their exceptions with a traceback.
logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)

_ENVELOPE_HEADERS = ("delivered-to", "x-original-to", "envelope-to", "x-envelope-to", "to")
_SMTP_REPLY = re.compile(r"\b([45])\d\d(?=[ :-])")
_MESSAGE_ID_LINE = re.compile(r"^Message-ID:[ \t]*(<[^>\s]+>)", re.IGNORECASE | re.MULTILINE)
_NOT_COMPLAINTS = {"not-spam"}


@dataclass(frozen=True)
class _Block:
    """One per-recipient field block of a message/delivery-status part."""

    address: str
    action: str
    status: str
    diagnostic: str


def parse_report(data: bytes) -> list[FeedbackEvent]:
    """Every event one message reports; [] for a message that is neither bounce nor
    complaint (an auto-reply, a human's answer)."""
    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    returned = _returned_headers(msg)
    message_id = (returned.get("message-id") or "").strip() if returned is not None else ""
    if not message_id:  # formats that quote our message as text after their own
        found = _MESSAGE_ID_LINE.search(_body_text(msg, whole=True))
        message_id = found.group(1) if found else ""
    sent_to = _sent_to(msg, returned)
    if _is_report(msg, "feedback-report"):
        return _complaints(msg, returned, message_id, sent_to)
    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # a detector choking on a malformed message: no verdict from it
        temporary, permanent = frozenset(), frozenset()
    blocks = {block.address: block for block in _dsn_blocks(msg)}
    text = _body_text(msg)
    events: list[FeedbackEvent] = []
    for raw, default in [(a, HARD) for a in sorted(permanent)] + [
        (a, DELAYED) for a in sorted(temporary - permanent)
    ]:
        address = raw.decode("ascii", "replace").strip().lower()
        if not address:
            continue
        block = blocks.get(address)
        if block is not None:
            kind = DELAYED if block.action.startswith("delayed") else kind_for_status(block.status)
            status, diagnostic, source = block.status, block.diagnostic, "dsn"
        else:
            status, diagnostic = _near(text, address)
            kind = DELAYED if default == DELAYED else kind_for_status(status)
            source = "mta"
        events.append(
            FeedbackEvent(
                kind=kind,
                address=address,
                status=status,
                diagnostic=diagnostic,
                message_id=message_id,
                sent_to=sent_to,
                source=source,
            )
        )
    return events


def _is_report(msg: Message, report_type: str) -> bool:
    return (
        msg.get_content_type() == "multipart/report"
        and str(msg.get_param("report-type") or "").lower() == report_type
    )


def _dsn_blocks(msg: Message) -> list[_Block]:
    blocks: list[_Block] = []
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status" or not part.is_multipart():
            continue
        for fields in part.get_payload():
            assert isinstance(fields, Message)
            recipient = fields.get("final-recipient") or fields.get("original-recipient")
            if not recipient:
                continue  # the per-message block (Reporting-MTA, Arrival-Date)
            address = _typed_address(str(recipient))
            diagnostic = one_line(str(fields.get("diagnostic-code") or ""))
            status = status_code(str(fields.get("status") or "")) or status_code(diagnostic)
            blocks.append(
                _Block(address, str(fields.get("action") or "").strip().lower(), status, diagnostic)
            )
            original = fields.get("original-recipient")
            if original:  # matched by either: flufl reports the original one when given
                blocks.append(replace(blocks[-1], address=_typed_address(str(original))))
    return blocks


def _typed_address(value: str) -> str:
    """``rfc822; user@example.org`` -> ``user@example.org``."""
    _, _, address = value.partition(";")
    return parseaddr((address or value).strip())[1].lower()


def _complaints(
    msg: Message, returned: Message | None, message_id: str, sent_to: tuple[str, ...]
) -> list[FeedbackEvent]:
    report = _feedback_fields(msg)
    feedback_type = str(report.get("feedback-type") or "abuse").strip().lower()
    if feedback_type in _NOT_COMPLAINTS:
        return []
    recipients = [a for _, a in getaddresses(report.get_all("original-rcpt-to") or []) if "@" in a]
    if not recipients and returned is not None:  # many feedback loops redact the address
        recipients = [a for _, a in getaddresses(returned.get_all("to") or []) if "@" in a]
    return [
        FeedbackEvent(
            kind=COMPLAINT,
            address=address.lower(),
            diagnostic=one_line(f"feedback-type {feedback_type}"),
            message_id=message_id,
            sent_to=sent_to,
            source="arf",
        )
        for address in (recipients or [""])
    ]


def _feedback_fields(msg: Message) -> Message:
    for part in msg.walk():
        if part.get_content_type() == "message/feedback-report":
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
            return HeaderParser().parsestr(str(payload))
    return Message()


def _returned_headers(msg: Message) -> Message | None:
    """The headers of our message as the report returns it (message/rfc822, or
    text/rfc822-headers as RFC 3462 and 5965 allow), if it does."""
    for part in msg.walk():
        kind = part.get_content_type()
        if kind in ("message/rfc822", "message/global") and part is not msg:
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
        if kind == "text/rfc822-headers":
            text = part.get_payload(decode=True)
            if isinstance(text, bytes):
                return HeaderParser().parsestr(text.decode("utf-8", "replace"))
    return None


def _sent_to(msg: Message, returned: Message | None) -> tuple[str, ...]:
    """Where the report was addressed (VERP tokens travel there), and the Return-Path the
    receiving server wrote into the returned message."""
    values = [str(v) for name in _ENVELOPE_HEADERS for v in msg.get_all(name) or []]
    if returned is not None:
        values += [str(v) for v in returned.get_all("return-path") or []]
    seen: dict[str, None] = {}
    for _, address in getaddresses(values):
        if address:
            seen.setdefault(address.lower(), None)
    return tuple(seen)


def _body_text(msg: Message, *, whole: bool = False) -> str:
    """The human-readable text of a bounce, up to the returned message (``whole``: all)."""
    texts: list[str] = []
    for part in msg.walk():
        if not whole and part.get_content_type() in ("message/rfc822", "text/rfc822-headers"):
            break
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                charset = part.get_content_charset() or "utf-8"
                try:
                    texts.append(payload.decode(charset, "replace"))
                except LookupError:
                    texts.append(payload.decode("utf-8", "replace"))
    return "\n".join(texts)


def _near(text: str, address: str) -> tuple[str, str]:
    """Status code and the line it stands on, from the paragraph after the address."""
    start = text.lower().find(address)
    window = text[start : start + 800] if start >= 0 else text[:2000]
    for line in window.splitlines():
        code = status_code(line)
        if not code and (reply := _SMTP_REPLY.search(line)):
            code = f"{reply.group(1)}.0.0"
        if code:
            return code, one_line(line)
    return "", ""
