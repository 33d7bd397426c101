"""How big an issue's HTML is as a subscriber receives it, and how big it may be.

Gmail clips a message whose HTML is larger than about 102 KB (clipping has been seen from
~99 KB), and the clipped part holds the footer with the unsubscribe link. The issue is rendered
once with placeholders (``__digest_unsubscribe_url__``) that are filled per recipient with
longer values, so its size is measured here with every placeholder filled by the longest value
a recipient can have: the builder that trims an issue and ``digest check`` agree on one number
and one limit.
"""

from __future__ import annotations

import html

from digest.catalogue import Translator, default_translator
from digest.headers import NAME_MAX
from digest.i18n import greeting
from digest.models import PLACEHOLDERS

HTML_SIZE_LIMIT = 90 * 1024  # bytes of HTML, placeholders filled
GMAIL_CLIPS_FROM_KB = 99
TOKEN_MAX = 43  # characters of a subscriber's token (secrets.token_urlsafe(32))


def longest_values(links_url: str, labels: dict[str, str]) -> dict[str, str]:
    """The longest value each placeholder can be filled with, HTML-escaped as it is filled."""
    token = "x" * TOKEN_MAX
    return {
        "greeting": html.escape(greeting(labels, "&" * NAME_MAX)),
        "unsubscribe_url": html.escape(f"{links_url}/unsubscribe/{token}"),
        "preferences_url": html.escape(f"{links_url}/preferences/{token}"),
    }


def sent_html_size(issue_html: str, links_url: str, labels: dict[str, str]) -> int:
    """Bytes of ``issue_html`` with each placeholder filled by its longest value."""
    size = len(issue_html.encode("utf-8"))
    for field, value in longest_values(links_url, labels).items():
        token = PLACEHOLDERS[field]
        size += issue_html.count(token) * (len(value.encode("utf-8")) - len(token))
    return size


def size_problem(size: int, t: Translator | None = None) -> str | None:
    """The one message for an HTML part over the limit, or None; in ``t``'s language."""
    if size <= HTML_SIZE_LIMIT:
        return None
    return (t or default_translator()).gettext(
        "HTML is %(size).1f KB, over the %(limit)s KB limit: Gmail clips messages from about "
        "%(clips)s KB and hides the unsubscribe link",
        size=size / 1024,
        limit=HTML_SIZE_LIMIT // 1024,
        clips=GMAIL_CLIPS_FROM_KB,
    )
