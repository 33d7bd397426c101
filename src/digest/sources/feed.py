"""``kind: feed``: RSS 0.9x/1.0/2.0 and Atom (feedparser) and JSON Feed 1.0/1.1 (json).

Items are keyed by the entry's guid/id, else its link, else a hash of its content, so a
re-fetch or a reordered feed yields the same keys. Dates become aware UTC; an entry without
one is dated "now" (the collection time: the first time it is seen). Entry HTML is
sanitised (:func:`digest.sources.base.clean_html`) with relative links resolved against the
entry's or the feed's URL.

A feed that is not well-formed but still yields entries (undefined entities, truncated after
a few entries, a wrong encoding declaration) is read with a warning; one that yields nothing
raises :class:`~digest.errors.SourceError` naming the URL, the line and the reason.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urljoin
from xml.sax import SAXParseException

from digest.errors import SourceError
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
from digest.sources.http import FetchOptions, HttpSourceConfig, fetch

SUMMARY_LENGTH = 300
TITLE_FALLBACK_LENGTH = 80
JSON_FEED_PREFIX = "https://jsonfeed.org/version/"
_JSON_TYPES = ("application/feed+json", "application/json")


class FeedSourceConfig(HttpSourceConfig):
    """RSS 0.9x/1.0/2.0, Atom or JSON Feed, over HTTP(S) or from a ``file:``."""

    kind: Literal["feed"]


@dataclass
class FeedSource:
    partial_listing: ClassVar[bool] = True  # shows the latest items only

    name: str
    url: str
    options: FetchOptions
    base_dir: Path | None = None
    tags: tuple[str, ...] = ()

    def collect(self, now: datetime) -> Collection:
        return self.fetch(now, None).collection

    def fetch(self, now: datetime, prior: SourceState | None) -> FetchOutcome:
        fetched = fetch(self.url, self.options, prior, base_dir=self.base_dir)
        if fetched.content is None:
            return FetchOutcome(
                etag=fetched.etag, last_modified=fetched.last_modified, not_modified=True
            )
        collection = parse_feed(
            fetched.content,
            source=self.name,
            url=fetched.url,
            now=now,
            content_type=fetched.content_type,
            display_url=self.url,
            tags=self.tags,
        )
        return FetchOutcome(collection, etag=fetched.etag, last_modified=fetched.last_modified)


def build(entry: FeedSourceConfig, context: SourceContext) -> FeedSource:
    return FeedSource(
        name=entry.source_name,
        url=entry.url,
        options=entry.fetch_options(context.site_url),
        base_dir=context.base_dir,
        tags=tuple(entry.tags),
    )


KIND = SourceKind(FeedSourceConfig, build)


def parse_feed(
    content: bytes,
    *,
    source: str,
    url: str,
    now: datetime,
    content_type: str | None = None,
    display_url: str | None = None,
    tags: tuple[str, ...] = (),
) -> Collection:
    """Items of a feed document. ``url`` is where it came from (relative links resolve
    against it); ``display_url`` names it in messages (default: ``url``)."""
    label = display_url or url
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type in _JSON_TYPES or (not media_type.endswith("xml") and _looks_like_json(content)):
        return _parse_json_feed(content, source, url, label, now, content_type, tags)
    return _parse_xml_feed(content, source, url, label, now, content_type, tags)


def _looks_like_json(content: bytes) -> bool:
    return content.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{"


# -- RSS and Atom ------------------------------------------------------------------------------


def _parse_xml_feed(
    content: bytes,
    source: str,
    url: str,
    label: str,
    now: datetime,
    content_type: str | None,
    tags: tuple[str, ...],
) -> Collection:
    # feedparser (~25 ms to import) loads on the first feed read, not with digest.config.
    import feedparser

    # No content-location: feedparser would resolve guids and links against the feed's URL.
    # Its own sanitiser and link resolution are off; clean_html does both, per entry.
    parsed = feedparser.parse(
        content,
        response_headers={"content-type": content_type or "application/xml"},
        resolve_relative_uris=False,
        sanitize_html=False,
    )
    problems: list[Problem] = []
    reason = _bozo_reason(parsed)
    if not parsed.entries:
        if reason:
            raise SourceError(f"{label}: not a readable feed: {reason}")
        if not parsed.get("version"):
            raise SourceError(f"{label}: not an RSS, Atom or JSON feed (no feed element found)")
    elif reason:
        problems.append(
            Problem(
                "warning",
                label,
                f"feed is not well-formed ({reason}); read {len(parsed.entries)} entries anyway",
            )
        )
    items: list[Item] = []
    empty = 0
    for entry in parsed.entries:
        item = _entry_item(entry, source, url, now, tags)
        if item is None:
            empty += 1
        else:
            items.append(item)
    if empty:
        problems.append(
            Problem(
                "warning",
                label,
                f"{empty} entr{'y' if empty == 1 else 'ies'} "
                "without title, link or content skipped",
            )
        )
    return _unique(items, problems, label)


def _bozo_reason(parsed: Any) -> str | None:
    import feedparser

    if not parsed.get("bozo"):
        return None
    exc = parsed.get("bozo_exception")
    if isinstance(exc, feedparser.NonXMLContentType):
        return None  # a server calling its feed text/html is common and harmless
    if isinstance(exc, SAXParseException):
        return f"line {exc.getLineNumber()}, column {exc.getColumnNumber()}: {exc.getMessage()}"
    if isinstance(exc, feedparser.CharacterEncodingOverride):
        return f"wrong character encoding declared, read as {parsed.get('encoding')}"
    return f"{type(exc).__name__}: {exc}" if exc else "malformed"


def _entry_item(
    entry: Any, source: str, feed_url: str, now: datetime, tags: tuple[str, ...]
) -> Item | None:
    """The item of one RSS/Atom entry; relative URLs resolve against the entry's xml:base,
    else its link, else the feed's URL. None for an entry with nothing in it."""
    xml_base = (entry.get("title_detail") or {}).get("base") or ""
    link = http_url(entry.get("link"), urljoin(feed_url, xml_base))
    base = urljoin(feed_url, xml_base) if xml_base else (link or feed_url)
    best = _best_content(entry)
    body_html = _html_of(best, base)
    summary_detail = entry.get("summary_detail")
    if summary_detail and summary_detail is not best:
        summary_html = _html_of(summary_detail, base)
    else:
        summary_html = body_html
    summary = truncate(html_to_text(summary_html), SUMMARY_LENGTH)
    if not body_html:
        body_html = summary_html
    if not (entry.get("title") or "").strip() and not link and not summary:
        return None
    title = _title(entry.get("title_detail"), summary)
    dated = next(
        (
            entry[key]
            for key in ("published_parsed", "updated_parsed", "created_parsed")
            if entry.get(key)
        ),
        None,
    )
    published = _struct_time_utc(dated)
    entry_tags = [tag.get("term") or tag.get("label") or "" for tag in entry.get("tags", [])]
    image = _entry_image(entry, base, title)
    guid = collapse_whitespace(str(entry.get("id") or ""))
    return _item(
        source=source,
        guid=guid,
        link=link,
        title=title,
        published=published,
        now=now,
        summary=summary,
        body_html=body_html,
        image=image,
        tags=merge_tags(entry_tags, tags),
    )


def _struct_time_utc(value: Any) -> datetime | None:
    """feedparser's dates are ``time.struct_time`` in UTC."""
    if value is None:
        return None
    year, month, day, hour, minute, second = tuple(value)[:6]
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None


def _best_content(entry: Any) -> Any:
    """The richest body: an HTML ``content`` element, else any content, else the summary."""
    contents = entry.get("content") or []
    for detail in contents:
        if "html" in (detail.get("type") or ""):
            return detail
    return contents[0] if contents else entry.get("summary_detail")


def _html_of(detail: Any, base: str) -> str:
    if not detail:
        return ""
    value = detail.get("value") or ""
    if "html" not in (detail.get("type") or "text/html"):
        paragraphs = [part.strip() for part in value.split("\n\n") if part.strip()]
        value = "".join(f"<p>{html.escape(part)}</p>" for part in paragraphs)
    own_base = detail.get("base")
    return clean_html(value, urljoin(base, own_base) if own_base else base)


def _title(detail: Any, summary: str) -> str:
    value = (detail or {}).get("value") or ""
    if "html" in ((detail or {}).get("type") or ""):
        value = html_to_text(clean_html(value, None))
    title = collapse_whitespace(value)
    return title or truncate(summary, TITLE_FALLBACK_LENGTH) or "(untitled)"


def _entry_image(entry: Any, base: str, title: str) -> Image | None:
    candidates: list[tuple[str | None, Any, Any]] = []
    for media in entry.get("media_thumbnail", []) + entry.get("media_content", []):
        if media.get("medium", "image") == "image" or "image" in media.get("type", ""):
            candidates.append((media.get("url"), media.get("width"), media.get("height")))
    for link in entry.get("links", []):
        if link.get("rel") == "enclosure" and (link.get("type") or "").startswith("image/"):
            candidates.append((link.get("href"), None, None))
    for src, width, height in candidates:
        absolute = http_url(src, base)
        if absolute:
            return Image(src=absolute, alt=title, width=_int(width), height=_int(height))
    return None


def _int(value: Any) -> int | None:
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


# -- JSON Feed ---------------------------------------------------------------------------------


def _parse_json_feed(
    content: bytes,
    source: str,
    url: str,
    label: str,
    now: datetime,
    content_type: str | None,
    tags: tuple[str, ...],
) -> Collection:
    charset = _charset(content_type) or "utf-8-sig"
    try:
        data = json.loads(content.decode(charset))
    except (UnicodeDecodeError, LookupError) as exc:
        raise SourceError(f"{label}: JSON Feed is not {charset} text: {exc}") from None
    except json.JSONDecodeError as exc:
        raise SourceError(
            f"{label}: not a readable JSON Feed: line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise SourceError(f"{label}: not a JSON Feed (no 'items' list)")
    problems: list[Problem] = []
    version = data.get("version")
    if not isinstance(version, str) or not version.startswith(JSON_FEED_PREFIX):
        problems.append(Problem("warning", label, f"unknown JSON Feed version {version!r}"))
    feed_base = http_url(data.get("home_page_url")) or url
    items: list[Item] = []
    for index, entry in enumerate(data["items"]):
        if not isinstance(entry, dict):
            problems.append(Problem("warning", label, f"items[{index}] is not an object (skipped)"))
            continue
        item, warnings = _json_item(entry, source, feed_base, now, tags)
        problems.extend(Problem("warning", label, f"items[{index}]: {text}") for text in warnings)
        items.append(item)
    return _unique(items, problems, label)


def _json_item(
    entry: dict[str, Any], source: str, feed_base: str, now: datetime, tags: tuple[str, ...]
) -> tuple[Item, list[str]]:
    warnings: list[str] = []
    link = http_url(_text(entry.get("url")) or _text(entry.get("external_url")), feed_base)
    base = link or feed_base
    if _text(entry.get("content_html")):
        body_html = clean_html(_text(entry.get("content_html")), base)
    else:
        plain = {"type": "text/plain", "value": _text(entry.get("content_text"))}
        body_html = _html_of(plain, base)
    summary_text = _text(entry.get("summary"))
    summary = truncate(summary_text or html_to_text(body_html), SUMMARY_LENGTH)
    title = collapse_whitespace(_text(entry.get("title"))) or truncate(
        summary, TITLE_FALLBACK_LENGTH
    )
    published: datetime | None = None
    for key in ("date_published", "date_modified"):
        raw = _text(entry.get(key))
        if raw:
            try:
                moment = datetime.fromisoformat(raw)
            except ValueError:
                warnings.append(f"{key} {raw!r} is not an RFC 3339 date (ignored)")
                continue
            published = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
            break
    image_url = http_url(_text(entry.get("image")) or _text(entry.get("banner_image")), base)
    raw_tags = entry.get("tags")
    if not isinstance(raw_tags, list):
        raw_tags = []
    item = _item(
        source=source,
        guid=collapse_whitespace(_text(entry.get("id"))),
        link=link,
        title=title or "(untitled)",
        published=published,
        now=now,
        summary=summary,
        body_html=body_html,
        image=Image(src=image_url, alt=title) if image_url else None,
        tags=merge_tags([str(tag) for tag in raw_tags], tags),
    )
    return item, warnings


def _text(value: Any) -> str:
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value)


def _charset(content_type: str | None) -> str | None:
    for parameter in (content_type or "").split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return value.strip().strip("\"'")
    return None


# -- shared ------------------------------------------------------------------------------------


def _item(
    *,
    source: str,
    guid: str,
    link: str | None,
    title: str,
    published: datetime | None,
    now: datetime,
    summary: str,
    body_html: str,
    image: Image | None,
    tags: tuple[str, ...],
) -> Item:
    content_hash = fingerprint(
        title,
        link,
        published.isoformat() if published else None,
        summary,
        body_html,
        image.src if image else None,
        list(tags),
    )
    key = guid or link or "sha256:" + fingerprint(title, summary, body_html)[:32]
    return Item(
        source=source,
        key=key,
        title=title,
        published_at=published or now.astimezone(UTC),
        summary=summary,
        body_html=body_html,
        content_hash=content_hash,
        url=link,
        image=image,
        tags=tags,
        dated=published is not None,
    )


def _unique(items: list[Item], problems: list[Problem], label: str) -> Collection:
    """Drop later entries that repeat a key (feeds do repeat guids) with a warning."""
    seen: set[str] = set()
    unique: list[Item] = []
    for item in items:
        if item.key in seen:
            problems.append(
                Problem(
                    "warning",
                    label,
                    f"entry id {item.key!r} appears twice; the later one is skipped",
                )
            )
            continue
        seen.add(item.key)
        unique.append(item)
    return Collection(items=tuple(unique), problems=tuple(problems))
