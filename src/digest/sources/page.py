"""``kind: page``: a listing page of teasers, described by CSS selectors (lxml + cssselect).

For sites without a feed: each element matching ``item`` is one item; inside it ``title``,
``teaser``, ``link`` (its ``href`` becomes the item's URL and key), ``image`` and the date.
Dates are read with a strptime ``format`` or a regular expression ``pattern`` with named groups
``day``, ``month`` (a number or a month name in the page's locale: "Am 20. September") and
``year``. Without a year in the match, the year is ``date.year``, else the nearest element
before the item that matches ``date.year_from`` and holds a year (a heading "2. Halbjahr
2017"), else this year (last year if that would put the date in the future). An item without
a recognisable date is dated "now", the time it is first seen.

A page where the ``item`` selector matches nothing raises :class:`SourceError`: the layout
changed, and that must not look like a quiet week.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo

import lxml.html
from babel.dates import get_month_names
from cssselect import GenericTranslator, SelectorError
from lxml import etree
from lxml.cssselect import CSSSelector
from pydantic import Field, field_validator

from digest.errors import SourceError
from digest.fields import StrictModel
from digest.markup import html_to_text, truncate
from digest.models import Collection, Image, Item, Problem, SourceState
from digest.sources.base import (
    FetchOutcome,
    SourceContext,
    SourceKind,
    clean_html,
    collapse_whitespace,
    fingerprint,
    http_url,
    merge_tags,
)
from digest.sources.http import PAGE_ACCEPT, FetchOptions, HttpSourceConfig, fetch

SUMMARY_LENGTH = 300
TITLE_FALLBACK_LENGTH = 120
# A sentence ends at . ! ? or … after a word (not after a digit: "am 16. November" goes on;
# not after one- or two-letter abbreviations: "z. B.", "Dr.") and before a capital or a quote.
_SENTENCE_END = re.compile(r"(?<=[^\W\d_]{3}[.!?…])[\"»“”)]?\s+(?=[\"„»“(]?[^\W\d_])")
_CLAUSE_END = re.compile(r"\s*(?::|;|\s[–—-]\s)\s*")
_YEAR = re.compile(r"\b(19[7-9]\d|2[01]\d\d)\b")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
DEFAULT_PATTERNS = (
    re.compile(r"\b(?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})\b"),
    re.compile(r"\b(?P<day>\d{1,2})\.\s?(?P<month>\d{1,2})\.\s?(?P<year>\d{4})\b"),
    re.compile(r"\b(?P<day>\d{1,2})\.?\s+(?P<month>[^\W\d_]{3,}\.?)(?:\s+(?P<year>\d{4})\b)?"),
    re.compile(
        r"\b(?P<month>[^\W\d_]{3,}\.?)\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?\b,?(?:\s+(?P<year>\d{4})\b)?"
    ),
)


def title_from_text(text: str, limit: int = TITLE_FALLBACK_LENGTH) -> str:
    """A title for a teaser without one: its first sentence, whole. A sentence longer than
    ``limit`` gives its first clause (up to ``:``, ``;`` or a dash) when that is a phrase of
    its own; only a sentence without one is shortened (at a word, with an ellipsis)."""
    text = " ".join(text.split())
    sentence = _SENTENCE_END.split(text, maxsplit=1)[0]
    if len(sentence) <= limit:
        return sentence
    clause = _CLAUSE_END.split(sentence, maxsplit=1)[0]
    if 20 <= len(clause) <= limit:
        return clause
    return truncate(sentence, limit)


def _css_selector(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        GenericTranslator().css_to_xpath(value)
    except SelectorError as exc:
        raise ValueError(f"invalid CSS selector {value!r}: {exc}") from None
    return value


class PageDateConfig(StrictModel):
    """Where an item's date is and how to read it: ``format`` (strptime) or ``pattern`` (a
    regular expression with named groups ``day``, ``month`` (number or month name in the
    locale) and optionally ``year``; a missing year comes from ``year``, ``year_from`` (the
    nearest element before the item that matches this selector and holds a four-digit year,
    e.g. a heading "2. Halbjahr 2017") or the current year."""

    selector: str | None = Field(default=None, description="Default: the teaser, else the item.")
    attribute: str | None = Field(default=None, description="Read this attribute, e.g. datetime.")
    format: str | None = None
    pattern: str | None = None
    year: int | None = Field(default=None, ge=1970, le=2200)
    year_from: str | None = None

    @field_validator("selector", "year_from")
    @classmethod
    def _selector(cls, value: str | None) -> str | None:
        return _css_selector(value)

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
        missing = {"day", "month"} - set(compiled.groupindex)
        if missing:
            raise ValueError(
                f"pattern needs the named group(s) {', '.join(sorted(missing))}, "
                "e.g. (?P<day>\\d+)\\. (?P<month>\\w+)"
            )
        return value


class PageSourceConfig(HttpSourceConfig):
    """A listing page of teasers described by CSS selectors (no feed needed)."""

    kind: Literal["page"]
    item: str = Field(description="CSS selector of one teaser block.")
    title: str | None = Field(default=None, description="Default: the teaser's first words.")
    teaser: str | None = None
    link: str | None = Field(default="a[href]", description="The 'read more' link (its href).")
    image: str | None = None
    date: PageDateConfig = PageDateConfig()
    locale: str | None = Field(default=None, description="Month names; default: site.locale.")

    @field_validator("item", "title", "teaser", "link", "image")
    @classmethod
    def _selectors(cls, value: str | None) -> str | None:
        return _css_selector(value)


@dataclass
class PageSource:
    partial_listing: ClassVar[bool] = True  # shows the latest items only

    name: str
    config: PageSourceConfig
    options: FetchOptions
    locale: str
    timezone: ZoneInfo
    base_dir: Path | None = None
    _selectors: dict[str, CSSSelector] = field(default_factory=dict, repr=False)

    def collect(self, now: datetime) -> Collection:
        return self.fetch(now, None).collection

    def fetch(self, now: datetime, prior: SourceState | None) -> FetchOutcome:
        fetched = fetch(
            self.config.url, self.options, prior, accept=PAGE_ACCEPT, base_dir=self.base_dir
        )
        if fetched.content is None:
            return FetchOutcome(
                etag=fetched.etag, last_modified=fetched.last_modified, not_modified=True
            )
        collection = self.parse(fetched.content, url=fetched.url, now=now, charset=fetched.charset)
        return FetchOutcome(collection, etag=fetched.etag, last_modified=fetched.last_modified)

    def parse(
        self, content: bytes, *, url: str, now: datetime, charset: str | None = None
    ) -> Collection:
        """Items of a listing page; ``url`` is where it came from (links resolve against it)."""
        label = self.config.url
        root = _parse_html(content, charset, label)
        elements = self._select(self.config.item, root)
        if not elements:
            raise SourceError(f"{label}: no element matches the item selector {self.config.item!r}")
        order: dict[Any, int] = {}
        if self.config.date.year_from:
            order = {element: index for index, element in enumerate(root.iter())}
        headings = self._year_headings(root, order)
        problems: list[Problem] = []
        items: list[Item] = []
        undated = 0
        seen: set[str] = set()
        for element in elements:
            heading_year = None
            if headings:
                position = bisect.bisect_left(headings, (order[element], 0))
                heading_year = headings[position - 1][1] if position else None
            item, dated = self._item(element, url, now, heading_year)
            if item is None:
                problems.append(
                    Problem("warning", label, "an item without title, text or link was skipped")
                )
                continue
            if item.key in seen:
                problems.append(
                    Problem(
                        "warning", label, f"{item.key} is listed twice; the later one is skipped"
                    )
                )
                continue
            seen.add(item.key)
            undated += not dated
            items.append(item)
        if undated:
            problems.append(
                Problem(
                    "warning",
                    label,
                    f"{undated} of {len(items)} item(s) have no "
                    "recognisable date and are dated when first seen",
                )
            )
        return Collection(items=tuple(items), problems=tuple(problems))

    # -- one item ------------------------------------------------------------------------------

    def _item(
        self, element: Any, page_url: str, now: datetime, heading_year: int | None
    ) -> tuple[Item | None, bool]:
        config = self.config
        link_element = self._first(config.link, element)
        link = http_url(link_element.get("href"), page_url) if link_element is not None else None
        teaser_element = self._first(config.teaser, element) if config.teaser else element
        body_html = ""
        if teaser_element is not None:
            fragment = lxml.html.tostring(teaser_element, encoding="unicode", with_tail=False)
            body_html = clean_html(fragment, page_url)
        summary = truncate(html_to_text(body_html), SUMMARY_LENGTH)
        title_element = self._first(config.title, element) if config.title else None
        title = (
            collapse_whitespace(title_element.text_content()) if title_element is not None else ""
        )
        if not title:
            title = title_from_text(html_to_text(body_html))
        if not title and not link:
            return None, False
        published = self._date(element, teaser_element, now, heading_year)
        image = self._image(element, page_url, title)
        tags = merge_tags(config.tags)
        content_hash = fingerprint(
            title,
            link,
            published.isoformat() if published else None,
            summary,
            body_html,
            image.src if image else None,
            list(tags),
        )
        item = Item(
            source=self.name,
            key=link or "sha256:" + fingerprint(title, summary)[:32],
            title=title or link or "(untitled)",
            published_at=published or now.astimezone(UTC),
            summary=summary,
            body_html=body_html,
            content_hash=content_hash,
            url=link,
            image=image,
            tags=tags,
            dated=published is not None,
        )
        return item, published is not None

    def _image(self, element: Any, page_url: str, title: str) -> Image | None:
        image = self._first(self.config.image, element) if self.config.image else None
        if image is None:
            return None
        src = http_url(image.get("src") or image.get("data-src"), page_url)
        if src is None:
            return None
        alt = collapse_whitespace(image.get("alt") or "") or title
        return Image(
            src=src, alt=alt, width=_int(image.get("width")), height=_int(image.get("height"))
        )

    def _date(
        self, element: Any, teaser: Any, now: datetime, heading_year: int | None
    ) -> datetime | None:
        spec = self.config.date
        holder = (
            self._first(spec.selector, element)
            if spec.selector
            else (teaser if teaser is not None else element)
        )
        if holder is None:
            return None
        text = holder.get(spec.attribute) if spec.attribute else holder.text_content()
        if not text:
            return None
        text = collapse_whitespace(text)
        if spec.attribute:
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                pass
            else:
                return (
                    moment if moment.tzinfo else moment.replace(tzinfo=self.timezone)
                ).astimezone(UTC)
        day = self._day(text, spec, now, heading_year)
        if day is None:
            return None
        return datetime.combine(day, time(0, 0), tzinfo=self.timezone).astimezone(UTC)

    def _day(
        self, text: str, spec: PageDateConfig, now: datetime, heading_year: int | None
    ) -> date | None:
        if spec.format:
            try:
                return datetime.strptime(text, spec.format).date()
            except ValueError:
                return None
        patterns = (re.compile(spec.pattern),) if spec.pattern else DEFAULT_PATTERNS
        candidates: list[tuple[int, date]] = []
        for pattern in patterns:  # the first valid date of each pattern; the earliest wins
            for match in pattern.finditer(text):
                found = self._match_date(match, spec, now, heading_year)
                if found is not None:
                    candidates.append((match.start(), found))
                    break
        return min(candidates)[1] if candidates else None

    def _match_date(
        self, match: re.Match[str], spec: PageDateConfig, now: datetime, heading_year: int | None
    ) -> date | None:
        groups = match.groupdict()
        month = month_number(groups.get("month") or "", self.locale)
        if month is None or not (groups.get("day") or "").isdigit():
            return None
        day = int(groups["day"])
        year_text = groups.get("year")
        inferred = False
        if year_text and year_text.isdigit():
            year = int(year_text) + (2000 if len(year_text) == 2 else 0)
        elif spec.year is not None:
            year = spec.year
        elif heading_year is not None:
            year = heading_year
        else:
            year, inferred = now.astimezone(self.timezone).year, True
        try:
            found = date(year, month, day)
            today = now.astimezone(self.timezone).date()
            if inferred and found > today + timedelta(days=1):
                found = date(year - 1, month, day)
        except ValueError:
            return None
        return found

    # -- selectors -----------------------------------------------------------------------------

    def _year_headings(self, root: Any, positions: dict[Any, int]) -> list[tuple[int, int]]:
        """(document position, year) of the elements matching ``date.year_from``."""
        selector = self.config.date.year_from
        if not selector:
            return []
        headings: list[tuple[int, int]] = []
        for heading in self._select(selector, root):
            found = _YEAR.search(heading.text_content())
            if found:
                headings.append((positions[heading], int(found.group(1))))
        return sorted(headings)

    def _select(self, selector: str, element: Any) -> list[Any]:
        compiled = self._selectors.get(selector)
        if compiled is None:
            compiled = self._selectors[selector] = CSSSelector(selector, translator="html")
        return list(compiled(element))

    def _first(self, selector: str | None, element: Any) -> Any:
        if not selector:
            return None
        found = self._select(selector, element)
        return found[0] if found else None


def build(entry: PageSourceConfig, context: SourceContext) -> PageSource:
    return PageSource(
        name=entry.source_name,
        config=entry,
        options=entry.fetch_options(context.site_url),
        locale=entry.locale or context.locale,
        timezone=context.timezone,
        base_dir=context.base_dir,
    )


KIND = SourceKind(PageSourceConfig, build)


@cache
def _month_names(locale: str) -> dict[str, int]:
    names: dict[str, int] = {}
    for source in (locale, "en"):
        for width in ("wide", "abbreviated"):
            for context in ("format", "stand-alone"):
                for number, name in get_month_names(width, context, locale=source).items():
                    names.setdefault(name.casefold().rstrip("."), number)
    return names


def month_number(text: str, locale: str) -> int | None:
    """1-12 for "11", "November", "Nov.", "März" (in ``locale``, else English); else None."""
    text = text.strip().rstrip(".")
    if text.isdigit():
        number = int(text)
        return number if 1 <= number <= 12 else None
    return _month_names(locale).get(text.casefold())


def _parse_html(content: bytes, charset: str | None, label: str) -> Any:
    encoding = charset
    if encoding is None:
        declared = _META_CHARSET.search(content[:4096])
        encoding = declared.group(1).decode("ascii") if declared else None
    text: str | None = None
    for candidate in (encoding, "utf-8", "windows-1252"):
        if candidate is None:
            continue
        try:
            text = content.decode(candidate)
            break
        except (UnicodeDecodeError, LookupError):
            continue
    if text is None:  # pragma: no cover - windows-1252 decodes almost anything
        text = content.decode("utf-8", errors="replace")
    text = re.sub(r"^\s*<\?xml[^>]*\?>", "", text.lstrip("\ufeff"))
    if not text.strip():
        raise SourceError(f"{label}: the page is empty")
    try:
        return lxml.html.document_fromstring(text)
    except (etree.ParserError, ValueError) as exc:
        raise SourceError(f"{label}: cannot parse the page as HTML: {exc}") from None


def _int(value: Any) -> int | None:
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None
