"""Locale-aware formatting (Babel) and the ``labels`` of the email templates.

The words come from the message catalogues (:mod:`digest.catalogue`); templates get ``labels``
for the site's language as a compatibility layer, and ``_()`` / ``ngettext()`` for anything else.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime, format_interval
from babel.numbers import format_decimal

from digest.catalogue import Translator, translator_for

_DateTime = datetime  # the Formatters.datetime method shadows the class inside the class body


def labels_for(locale: str | Translator) -> dict[str, str]:
    """The ``labels`` dict of the email templates, from the site language's catalogue.

    A compatibility layer for site templates written before the catalogue: placeholders are
    ``{name}`` for ``str.format``. New templates call ``_()`` / ``ngettext()`` instead."""
    t = translator_for(locale) if isinstance(locale, str) else locale
    return {
        "read_more": t.gettext("Read more"),
        "greeting_named": t.gettext("Hello %(name)s,", name="{name}"),
        "greeting_anonymous": t.gettext("Hello,"),
        "intro_default": t.gettext("here is what is new from %(period)s.", period="{period}"),
        "unsubscribe": t.gettext("Unsubscribe"),
        "preferences": t.gettext("Change preferences"),
        "view_in_browser": t.gettext("View in browser"),
        "imprint": t.gettext("Imprint"),
        "privacy": t.gettext("Privacy"),
        "why_received": t.gettext(
            "You receive this email because you subscribed to “%(digest)s” from %(site)s.",
            digest="{digest}",
            site="{site}",
        ),
        "other_items": t.gettext("More"),
        "items_count": t.ngettext("%(num)s new post", "%(num)s new posts", 2, num="{count}"),
        "sample_name": t.gettext("Jane Doe"),
        "body_shortened": t.gettext("This item is too long for an email and was shortened here."),
    }


def greeting(labels: dict[str, str], name: str) -> str:
    name = " ".join(name.split())
    return labels["greeting_named"].format(name=name) if name else labels["greeting_anonymous"]


class Formatters:
    """Jinja filters bound to one locale and time zone."""

    def __init__(self, locale: str, timezone: ZoneInfo) -> None:
        self.locale = locale
        self.timezone = timezone

    def date(self, value: datetime, format: str = "long") -> str:
        return format_date(value.astimezone(self.timezone), format=format, locale=self.locale)

    def datetime(self, value: datetime, format: str = "medium") -> str:
        return format_datetime(value, format=format, tzinfo=self.timezone, locale=self.locale)

    def interval(self, start: _DateTime, end: _DateTime) -> str:
        """``13.–20. November 2017``: a date range as the locale writes it."""
        return format_interval(
            start.astimezone(self.timezone).date(),
            end.astimezone(self.timezone).date(),
            skeleton="yMMMMd",
            locale=self.locale,
        )

    def number(self, value: float) -> str:
        return format_decimal(value, locale=self.locale)

    def month(self, value: _DateTime) -> str:
        return format_date(value.astimezone(self.timezone), format="LLLL yyyy", locale=self.locale)

    def filters(self) -> dict[str, Any]:
        return {
            "format_date": self.date,
            "format_datetime": self.datetime,
            "format_number": self.number,
            "format_month": self.month,
        }
