"""Render one issue: Jinja2 -> MJML -> mjml-python -> premailer, plus a text part.

Pure: takes the items and the period, returns strings. Rendering happens once per issue; the
few per-recipient values (greeting, unsubscribe and preferences URLs) are placeholders here
and are spliced in later by :mod:`digest.message`.
"""

from __future__ import annotations

import logging
import re
import textwrap
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup
from mjml import mjml2html
from premailer import Premailer

from digest.catalogue import catalogue_language, translator_for
from digest.config import LoadedConfig
from digest.errors import TemplateError
from digest.headers import single_line
from digest.i18n import Formatters, labels_for
from digest.markup import (
    BODY_MAX_BYTES,
    body_text,
    clean_text,
    fit_column,
    shorten_html,
    truncate,
)
from digest.models import PLACEHOLDERS, Image, Item, RenderedIssue
from digest.schedule import Period
from digest.size import sent_html_size

PREHEADER_LENGTH = 140
# Every placeholder starts so; content that contains it is defused (see defuse()).
PLACEHOLDER_PREFIX = "__digest_"
_DEFUSED_PREFIX = "_\u200b_digest_"

KNOWN_MJML_TAGS = frozenset(
    """mjml mj-head mj-body mj-attributes mj-all mj-class mj-breakpoint mj-font
    mj-html-attributes mj-html-attribute mj-selector mj-preview mj-style mj-title mj-raw
    mj-include mj-section mj-column mj-group mj-wrapper mj-hero mj-text mj-image mj-button
    mj-divider mj-spacer mj-table mj-social mj-social-element mj-navbar mj-navbar-link
    mj-accordion mj-accordion-element mj-accordion-title mj-accordion-text mj-carousel
    mj-carousel-image""".split()  # noqa: SIM905 (a word list reads better here)
)
_INLINE_MJ_STYLE = re.compile(
    r"<mj-style\b[^>]*\binline\s*=\s*[\"']inline[\"'][^>]*>(.*?)</mj-style>", re.S | re.I
)
_STYLE_TAG = re.compile(r"<style\b", re.I)
_MJML_TAG = re.compile(r"<(/?)(mjml|mj-[a-zA-Z0-9-]+)\b((?:[^>\"']|\"[^\"]*\"|'[^']*')*)>")


class BadItemsError(TemplateError):
    """Items whose content the MJML step cannot take; the message names each one."""

    def __init__(self, message: str, items: Sequence[Item]) -> None:
        super().__init__(message)
        self.items = tuple(items)


@dataclass(frozen=True)
class ItemView:
    """What templates see of an item. ``html``, ``text`` and ``shortened`` are worked out
    when a template first reads them: a teaser's body is usually not shown at all."""

    title: str
    url: str | None
    date: datetime
    summary: str
    image: Image | None
    tags: tuple[str, ...]
    heading_level: int  # h2 under the digest's h1, h3 under a group heading
    body_html: str  # cleaned of non-text characters, not yet fitted nor defused
    dated: bool = True  # False: the source gave no date; templates show none

    @cached_property
    def _body(self) -> tuple[str, bool]:
        return shorten_html(self.body_html, BODY_MAX_BYTES)

    @cached_property
    def html(self) -> Markup:
        """The body fitted to the column (:func:`~digest.markup.fit_column`). fit_column
        serialises with lxml, which writes every character reference out as the character,
        so :func:`defuse` sees them all; lxml decodes references to non-text characters too,
        hence a second cleaning."""
        fitted = fit_column(self._body[0], heading_level=self.heading_level)
        return Markup(defuse(clean_text(fitted)))

    @cached_property
    def text(self) -> str:
        return defuse(clean_text(body_text(self._body[0])))

    @property
    def shortened(self) -> bool:
        """The body was too long for an email: the template says so."""
        return self._body[1]


@dataclass(frozen=True)
class Group:
    label: str | None
    items: list[ItemView]


class Renderer:
    """Templates of one site; user templates override the packaged defaults file by file.

    ``language`` (a catalogue, e.g. ``en``) renders the frame (greeting, labels, dates,
    footer, subject) in a reader's language instead of the site's; content stays as written."""

    def __init__(self, loaded: LoadedConfig, language: str | None = None) -> None:
        self.loaded = loaded
        self.site = loaded.config.site
        site_language = catalogue_language(self.site.locale)
        self.language = language or site_language
        self.site_language = site_language
        locale = self.site.locale if self.language == site_language else self.language
        self.translator = (
            loaded.translator if locale == self.site.locale else translator_for(locale)
        )
        self.labels = labels_for(self.translator)
        self.formatters = Formatters(locale, self.site.tz)
        loaders: list[jinja2.BaseLoader] = []
        if loaded.templates_dir.is_dir():
            loaders.append(jinja2.FileSystemLoader(loaded.templates_dir))
        loaders.append(jinja2.PackageLoader("digest", "templates"))
        # Site templates are the site owner's, not ours: sandboxed, they cannot reach Python
        # internals (``cycler.__init__.__globals__.os`` is a SecurityError, a template error).
        self.env = SandboxedEnvironment(
            loader=jinja2.ChoiceLoader(loaders),
            autoescape=jinja2.select_autoescape(
                enabled_extensions=("mjml", "html", "xml"), default_for_string=False
            ),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self.translator.install(self.env)  # _(), ngettext(), {% trans %} in the site's language
        self.env.filters.update(self.formatters.filters())
        self.env.filters["wrap"] = _wrap
        self.env.filters["truncate_words"] = truncate

    def render(
        self,
        digest_name: str,
        items: Sequence[Item],
        period: Period,
        *,
        waiting: int = 0,
        variant: str | None = None,
    ) -> RenderedIssue:
        """``waiting``: items of the period held back for the next issue (the email says
        how many). ``variant``: the key of the reader variant this is (its "view in browser"
        link opens that variant in the archive, not the issue's own rendering)."""
        digest = self.loaded.digest(digest_name)
        context = self._context(digest_name, items, period)
        context["issue"].update(waiting=waiting, waiting_note=self._waiting_note(waiting))
        if variant is not None:
            context["issue"]["view_url"] += "?" + urlencode({"variant": variant})
        subject = single_line(
            self._render_string(digest.subject_for(self.language), context, "subject")
        )
        if not subject:
            raise TemplateError(f"digests.{digest_name}.subject: renders to an empty subject")
        if digest.preheader:
            preheader = single_line(self._render_string(digest.preheader, context, "preheader"))
        else:
            titles = " · ".join(view.title for view in context["items"])
            preheader = truncate(titles, PREHEADER_LENGTH)
        context["issue"].update(subject=subject, preheader=preheader)

        mjml_name = f"{digest.template}.mjml"
        mjml_source = self._render_template(mjml_name, context)
        check_mjml(mjml_source, mjml_name, locate=self._find_tag)
        mjml_source, inline_rules = split_inline_styles(mjml_source)
        try:
            html = mjml2html(mjml_source, disable_comments=True, fonts={})
        except (ValueError, UnicodeError) as exc:
            bad = self._bad_items(digest_name, items, period) if len(items) else []
            if bad:
                names = "; ".join(f"{item.uid} ({item.title[:60]!r})" for item in bad)
                raise BadItemsError(f"item content MJML cannot take: {names}: {exc}", bad) from None
            raise TemplateError(f"{self._origin(mjml_name)}: MJML error: {exc}") from None
        html = inline_css(html, inline_rules)
        text = normalise_text(self._render_template(f"{digest.template}.txt", context))
        return RenderedIssue(subject=subject, preheader=preheader, html=html, text=text)

    def _bad_items(self, digest_name: str, items: Sequence[Item], period: Period) -> list[Item]:
        """The items that fail the MJML step on their own (when the whole issue failed)."""
        bad = []
        for item in items:
            context = self._context(digest_name, [item], period)
            context["issue"].update(subject="-", preheader="-")
            source, _ = split_inline_styles(
                self._render_template(f"{self.loaded.digest(digest_name).template}.mjml", context)
            )
            try:
                mjml2html(source, disable_comments=True, fonts={})
            except (ValueError, UnicodeError):
                bad.append(item)
        return bad

    def _context(self, digest_name: str, items: Sequence[Item], period: Period) -> dict[str, Any]:
        digest = self.loaded.digest(digest_name)
        level = 2 if digest.group_by == "none" else 3
        views = [_view(item, level) for item in items]
        period_text = self._period_text(period)
        return {
            "site": self.site,
            "digest": {
                "name": digest_name,
                "title": digest.title,
                "intro": digest.intro or self.labels["intro_default"].format(period=period_text),
            },
            "issue": {
                "period_start": period.start,
                "period_end": period.end,
                "period": period_text,
                "view_url": f"{self.site.links_url}/archive/{digest_name}/{period.slug}",
                "subject": "",
                "preheader": "",
                "waiting": 0,
                "waiting_note": "",
            },
            "items": views,
            "groups": _group(views, digest.group_by, self.labels, self.formatters),
            "recipient": PLACEHOLDERS,
            "labels": self.labels,
            "lang": self.language,
            # Content stays as written, in the site's language: a frame in another language
            # marks it, so screen readers switch voice (WCAG 3.1.2, language of parts).
            "content_lang": self.site_language if self.site_language != self.language else "",
            "why_received": self.labels["why_received"].format(
                digest=digest.title, site=self.site.title
            ),
        }

    def _waiting_note(self, waiting: int) -> str:
        if waiting <= 0:
            return ""
        return self.translator.ngettext(
            "One more item did not fit into this email; it follows in the next issue.",
            "%(num)s more items did not fit into this email; they follow in the next issue.",
            waiting,
            num=self.formatters.number(waiting),
        )

    def sent_size(self, rendered: RenderedIssue) -> int:
        """Bytes of the HTML as a subscriber receives it (:func:`digest.size.sent_html_size`)."""
        return sent_html_size(rendered.html, self.site.links_url, self.labels)

    def _period_text(self, period: Period) -> str:
        if period.start is None:
            return self.formatters.date(period.end)
        return self.formatters.interval(period.start, period.end)

    def _render_template(self, name: str, context: dict[str, Any]) -> str:
        try:
            return self.env.get_template(name).render(context)
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(
                f"template {exc.name!r} not found in {self.loaded.templates_dir} "
                "nor among the packaged defaults"
            ) from None
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(
                f"{exc.filename or exc.name}:{exc.lineno}: template syntax error: {exc.message}"
            ) from None
        except Exception as exc:  # any error raised while rendering user templates
            raise TemplateError(f"{_template_location(exc, name)}: {_describe(exc)}") from None

    def _render_string(self, source: str, context: dict[str, Any], field: str) -> str:
        where = f"{self.loaded.path}: digests subject/preheader ({field})"
        try:
            return self.env.from_string(source).render(context)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"{where}: template syntax error: {exc.message}") from None
        except Exception as exc:
            raise TemplateError(f"{where}: {_describe(exc)}") from None

    def _find_tag(self, tag: str) -> str | None:
        """``file:line`` of the first template (user's first) that writes ``<tag``."""
        pattern = re.compile(rf"</?{re.escape(tag)}\b")
        for name in self.env.list_templates(extensions=["mjml"]):
            try:
                text, filename, _ = self.env.loader.get_source(self.env, name)  # type: ignore[union-attr]
            except jinja2.TemplateNotFound:
                continue
            match = pattern.search(text)
            if match:
                return f"{filename or name}:{text.count(chr(10), 0, match.start()) + 1}"
        return None

    def _origin(self, name: str) -> str:
        try:
            source = self.env.loader.get_source(self.env, name)  # type: ignore[union-attr]
        except jinja2.TemplateNotFound:
            return name
        return source[1] or name


def split_inline_styles(mjml_source: str) -> tuple[str, str]:
    """The MJML without its ``<mj-style inline="inline">`` blocks, and their CSS.

    mjml-python would copy those blocks into ``<head>`` like any other style; MJML inlines
    them instead, and so does :func:`inline_css` with the CSS returned here."""
    css = "\n".join(match.group(1) for match in _INLINE_MJ_STYLE.finditer(mjml_source))
    return _INLINE_MJ_STYLE.sub("", mjml_source), css


def inline_css(html: str, css: str = "") -> str:
    """Inline ``css`` (the ``<mj-style inline="inline">`` rules) into the elements it selects,
    as MJML does. The document's own ``<style>`` blocks (MJML's resets and breakpoints, media
    queries, dark mode) stay in ``<head>`` and are not inlined: inlining them would repeat
    MJML's table resets on every cell (+15 % HTML, half of it towards Gmail's clipping limit)."""
    inliner = Premailer(
        _STYLE_TAG.sub('<style data-premailer="ignore"', html),
        css_text=[css] if css.strip() else None,
        allow_network=False,
        keep_style_tags=True,
        remove_classes=False,
        strip_important=False,
        disable_validation=True,
        cssutils_logging_level=logging.CRITICAL,
        # Keep MJML's pixel width/height attributes: premailer would copy "width:100%" from the
        # style into <img width>, and Outlook then draws the picture at its natural size.
        disable_basic_attributes=["width", "height"],
        # On: cssutils re-parses every <img style> looking for float (1-3 ms per image, most
        # of the time of a long issue); MJML never floats images.
        align_floating_images=False,
    )
    result: str = inliner.transform()
    if not result.lstrip().lower().startswith("<!doctype"):
        # premailer drops it; without it clients render in quirks mode
        result = "<!doctype html>\n" + result
    return result


def check_mjml(
    source: str, template: str, locate: Callable[[str], str | None] | None = None
) -> None:
    """Catch what mjml-python lets through silently (unknown tags) or reports without a
    position (unbalanced tags). Lines are those of the rendered MJML; ``locate`` may name
    the template file and line an unknown tag is written in."""
    stack: list[tuple[str, int]] = []
    line, counted_to = 1, 0  # count line ends incrementally: linear in the source's length
    for match in _MJML_TAG.finditer(source):
        closing, tag, rest = match.group(1), match.group(2), match.group(3)
        line += source.count("\n", counted_to, match.start())
        counted_to = match.start()
        if tag not in KNOWN_MJML_TAGS:
            where = (locate(tag) if locate else None) or f"{template}: rendered MJML line {line}"
            raise TemplateError(
                f"{where}: unknown tag <{tag}> (near {_snippet(source, match.start())})"
            )
        if rest.rstrip().endswith("/"):
            continue
        if not closing:
            stack.append((tag, line))
            continue
        if not stack or stack[-1][0] != tag:
            expected = f"</{stack[-1][0]}> opened on line {stack[-1][1]}" if stack else "nothing"
            raise TemplateError(
                f"{template}: rendered MJML line {line}: </{tag}> closes {expected}"
            )
        stack.pop()
    if stack:
        tag, line = stack[-1]
        raise TemplateError(f"{template}: rendered MJML line {line}: <{tag}> is never closed")


def _snippet(source: str, position: int, length: int = 60) -> str:
    """A one-line excerpt of ``source`` from ``position``, for error messages."""
    return repr(" ".join(source[position : position + length].split()))


def normalise_text(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n") + "\n"


_LIST_MARKER = re.compile(r"(?:\s*)(?:[-*>] |\d+\. )")


def _wrap(text: str, width: int = 72, indent: str = "") -> str:
    """Fill each paragraph to ``width``. A paragraph of several lines (a list, a table, lines
    broken by ``<br>``) is filled line by line, a list item hanging under its marker; a line
    indented by four spaces (``pre``) is kept as it is."""
    paragraphs = [p for p in str(text).split("\n\n") if p.strip()]
    return "\n\n".join(
        "\n".join(_fill_line(line, width, indent) for line in paragraph.split("\n"))
        if "\n" in paragraph.strip("\n") or paragraph.startswith("    ")
        else _fill_line(" ".join(paragraph.split()), width, indent)
        for paragraph in paragraphs
    )


def _fill_line(line: str, width: int, indent: str) -> str:
    if line.startswith("    "):
        return indent + line.rstrip()
    marker = _LIST_MARKER.match(line)
    hanging = " " * len(marker.group(0)) if marker else ""
    return textwrap.fill(
        line.strip() if not marker else line.rstrip(),
        width=width,
        initial_indent=indent,
        subsequent_indent=indent + hanging,
        break_long_words=False,
        break_on_hyphens=False,
    )


def _view(item: Item, heading_level: int) -> ItemView:
    """What templates see of an item: every value cleaned of characters that are not text
    (sources do it too; items stored before they did are not) and defused (:func:`defuse`).
    The body was sanitised by nh3 when the source read it; it is fitted to the column at
    render time, so that items stored before a layout change fit as well."""

    def safe(value: str) -> str:
        return defuse(clean_text(value))

    image = item.image
    if image is not None:
        image = replace(image, src=safe(image.src), alt=safe(image.alt))
    return ItemView(
        title=defuse(single_line(clean_text(item.title))),  # one line, whatever the source sent
        url=safe(item.url) if item.url else None,
        date=item.published_at,
        summary=safe(item.summary),
        image=image,
        tags=tuple(safe(tag) for tag in item.tags),
        heading_level=heading_level,
        body_html=clean_text(item.body_html),
        dated=item.dated,
    )


def defuse(value: str) -> str:
    """Content can never produce a per-recipient placeholder: a ``__digest_`` in an item's
    text, address or HTML gets a zero-width space between its underscores, so the splice
    (:mod:`digest.message`), which fills only exact placeholders, leaves it alone. Templates
    and config are written by staff and are not defused."""
    return value.replace(PLACEHOLDER_PREFIX, _DEFUSED_PREFIX)


def _group(
    views: list[ItemView], group_by: str, labels: dict[str, str], formatters: Formatters
) -> list[Group]:
    if group_by == "none":
        return [Group(label=None, items=views)] if views else []
    groups: dict[str, list[ItemView]] = {}
    for view in views:
        if group_by == "tag":
            label = view.tags[0] if view.tags else labels["other_items"]
        else:
            label = formatters.month(view.date)
        groups.setdefault(label, []).append(view)
    other = groups.pop(labels["other_items"], None)
    result = [Group(label=label, items=members) for label, members in groups.items()]
    if other:
        result.append(Group(label=labels["other_items"], items=other))
    return result


def _template_location(exc: BaseException, fallback: str) -> str:
    """Template file and line of a render-time error, from Jinja's rewritten traceback."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.endswith((".mjml", ".txt", ".html")):
            return f"{frame.filename}:{frame.lineno}"
    return fallback


def _describe(exc: BaseException) -> str:
    if isinstance(exc, jinja2.UndefinedError):
        return f"undefined value: {exc.message}"
    return f"{type(exc).__name__}: {exc}"


def template_paths(loaded: LoadedConfig) -> list[Path]:
    """Folders searched for templates, user's first."""
    return [loaded.templates_dir, Path(__file__).parent / "templates"]
