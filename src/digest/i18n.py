"""Locale-aware formatting (Babel) and the few words the default templates need.

Templates get ``labels`` for the site's language; a user's templates may ignore them and write
their own words. Languages without an entry fall back to English.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime, format_interval
from babel.numbers import format_decimal

_DateTime = datetime  # the Formatters.datetime method shadows the class inside the class body

LABELS: dict[str, dict[str, str]] = {
    "de": {
        "read_more": "Weiterlesen",
        "greeting_named": "Hallo {name},",
        "greeting_anonymous": "Guten Tag,",
        "intro_default": "hier sind die neuen Beiträge aus dem Zeitraum {period}.",
        "unsubscribe": "Abmelden",
        "preferences": "Einstellungen ändern",
        "view_in_browser": "Im Browser ansehen",
        "imprint": "Impressum",
        "privacy": "Datenschutz",
        "why_received": "Sie erhalten diese E-Mail, weil Sie „{digest}“ von {site} abonniert "
        "haben.",
        "other_items": "Weitere Beiträge",
        "items_count": "{count} neue Beiträge",
        "sample_name": "Erika Mustermann",
        "body_shortened": "Dieser Beitrag ist für eine E-Mail zu lang und wurde hier gekürzt.",
        "items_waiting_one": "Ein weiterer Beitrag passte nicht mehr in diese E-Mail; er folgt "
        "in der nächsten Ausgabe.",
        "items_waiting": "{count} weitere Beiträge passten nicht mehr in diese E-Mail; sie "
        "folgen in der nächsten Ausgabe.",
    },
    "en": {
        "read_more": "Read more",
        "greeting_named": "Hello {name},",
        "greeting_anonymous": "Hello,",
        "intro_default": "here is what is new from {period}.",
        "unsubscribe": "Unsubscribe",
        "preferences": "Change preferences",
        "view_in_browser": "View in browser",
        "imprint": "Imprint",
        "privacy": "Privacy",
        "why_received": "You receive this email because you subscribed to “{digest}” from {site}.",
        "other_items": "More",
        "items_count": "{count} new posts",
        "sample_name": "Jane Doe",
        "body_shortened": "This item is too long for an email and was shortened here.",
        "items_waiting_one": "One more item did not fit into this email; it follows in the "
        "next issue.",
        "items_waiting": "{count} more items did not fit into this email; they follow in the "
        "next issue.",
    },
}


def labels_for(locale: str) -> dict[str, str]:
    language = Locale.parse(locale).language
    return LABELS.get(language, LABELS["en"])


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
