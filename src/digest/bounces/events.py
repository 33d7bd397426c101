"""What the mail system tells us about a message we sent: one value class for every intake.

A bounce message (DSN or an MTA's own format), an ARF complaint, a provider webhook: each
becomes zero or more :class:`FeedbackEvent`; matching them to deliveries and applying the
policy does not care where they came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from digest.errors import DigestError

HARD, SOFT, DELAYED, COMPLAINT = "hard", "soft", "delayed", "complaint"
EVENT_KINDS = (HARD, SOFT, DELAYED, COMPLAINT)

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")


class BounceError(DigestError):
    """A bounce source cannot be read (file, maildir, mbox, IMAP server)."""


class WebhookRefused(DigestError):
    """A provider webhook failed verification or cannot be read: answered 4xx, nothing kept."""


@dataclass(frozen=True)
class FeedbackEvent:
    kind: str  # hard | soft | delayed | complaint
    address: str  # the recipient it is about, lower-cased ("" when the report does not say)
    status: str = ""  # RFC 3463 enhanced status code, e.g. "5.1.1"
    diagnostic: str = ""  # what the remote server said, one line
    message_id: str = ""  # Message-ID of the message we sent, with angle brackets
    # Addresses the report was sent to (To, Delivered-To, X-Original-To, ...): the VERP
    # return path of the delivery when there is one.
    sent_to: tuple[str, ...] = field(default=())
    source: str = ""  # "dsn", "arf", "flufl:exim", "ses", ... (for the log)

    @property
    def counts(self) -> bool:
        """Delayed-delivery notices are recorded but never count as a failure."""
        return self.kind != DELAYED


def status_code(text: str) -> str:
    """The first RFC 3463 status code in ``text`` ("" if none)."""
    match = _STATUS.search(text)
    return ".".join(match.groups()) if match else ""


def kind_for_status(status: str, *, default: str = HARD) -> str:
    """4.x.x is temporary (soft), 5.x.x permanent (hard); no code: ``default``."""
    if status.startswith("4"):
        return SOFT
    if status.startswith("5"):
        return HARD
    return default


def one_line(text: str, limit: int = 500) -> str:
    return " ".join(text.split())[:limit]
