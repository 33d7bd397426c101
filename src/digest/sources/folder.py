"""The ``content/`` folder: Markdown files with YAML front matter.

```
---
title: Stadtführung für Lehrkräfte
date: 2017-11-14T10:00:00+01:00
url: https://www.example.org/aktuelles/stadtfuehrung      # optional
summary: Teaser text                                        # optional: else the body's start
image: {src: https://..., alt: "...", width: 600, height: 338}   # or just a URL
tags: [Schule]
id: stadtfuehrung-2017                                      # optional: else the file path
draft: false
---
Markdown body
```
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import yaml

from digest.errors import ContentError, SourceError
from digest.markup import html_to_text, markdown_to_html, truncate
from digest.models import Collection, Image, Item, Problem
from digest.safe_yaml import YamlAliasError, load_front_matter
from digest.sources.base import SourceContext, SourceEntry, SourceKind

SUMMARY_LENGTH = 300
KNOWN_KEYS = {"title", "date", "url", "summary", "image", "tags", "id", "draft"}


class FolderSourceConfig(SourceEntry):
    kind: Literal["folder"]
    path: str = "content"
    name: str | None = None
    pattern: str = "**/*.md"

    @property
    def source_name(self) -> str:
        return self.name or f"folder:{self.path}"

    @property
    def target(self) -> str:
        return self.path


@dataclass
class FolderSource:
    name: str
    root: Path
    pattern: str
    base_url: str
    timezone: ZoneInfo

    def collect(self, now: datetime) -> Collection:
        if not self.root.is_dir():
            raise SourceError(f"{self.root}: content folder not found (source {self.name!r})")
        items: list[Item] = []
        problems: list[Problem] = []
        seen: dict[str, Path] = {}
        for path in sorted(self.root.glob(self.pattern)):
            if not path.is_file() or any(part.startswith(".") for part in path.parts):
                continue
            try:
                item, warnings = self.read_file(path)
            except ContentError as exc:
                problems.append(Problem("error", str(path), f"{exc} (file skipped)"))
                continue
            problems.extend(Problem("warning", str(path), warning) for warning in warnings)
            if item.key in seen:
                problems.append(
                    Problem(
                        "error",
                        str(path),
                        f"id {item.key!r} already used by {seen[item.key]} (file skipped)",
                    )
                )
                continue
            seen[item.key] = path
            items.append(item)
        return Collection(items=tuple(items), problems=tuple(problems))

    def read_file(self, path: Path) -> tuple[Item, list[str]]:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            raise ContentError("not UTF-8 text") from None
        meta, body, body_line = _split_front_matter(text)
        warnings: list[str] = []
        unknown = sorted(set(meta) - KNOWN_KEYS)
        if unknown:
            warnings.append(f"unknown front matter key(s) ignored: {', '.join(unknown)}")

        title = meta.get("title")
        if not isinstance(title, str) or not title.strip():
            raise ContentError("front matter: 'title' is missing or empty")
        published_at = _parse_date(meta.get("date"), self.timezone)
        url = _optional_url(meta.get("url"), "url")
        image = _parse_image(meta.get("image"))
        if image is not None and not image.alt:
            warnings.append("image has no alt text: screen readers will skip it")
        tags = _parse_tags(meta.get("tags"))
        draft = meta.get("draft", False)
        if not isinstance(draft, bool):
            raise ContentError("front matter: 'draft' must be true or false")
        key = meta.get("id")
        if key is None:
            key = path.relative_to(self.root).with_suffix("").as_posix()
        elif not isinstance(key, str | int) or not str(key).strip():
            raise ContentError("front matter: 'id' must be a non-empty string")

        body_html = markdown_to_html(body, url or self.base_url)
        summary = meta.get("summary")
        if summary is None:
            first = html_to_text(body_html).split("\n\n", 1)[0]
            summary = truncate(first, SUMMARY_LENGTH)
        elif not isinstance(summary, str):
            raise ContentError("front matter: 'summary' must be text")
        del body_line  # line numbers of the body are not needed once it parsed

        fingerprint = json.dumps(
            [title, published_at.isoformat(), url, summary, body, meta.get("image"), list(tags)],
            ensure_ascii=False,
            default=str,
        )
        item = Item(
            source=self.name,
            key=str(key).strip(),
            title=title.strip(),
            published_at=published_at,
            summary=" ".join(summary.split()),
            body_html=body_html,
            content_hash=hashlib.sha256(fingerprint.encode()).hexdigest(),
            url=url,
            image=image,
            tags=tags,
            draft=draft,
        )
        return item, warnings


def build(entry: FolderSourceConfig, context: SourceContext) -> FolderSource:
    return FolderSource(
        name=entry.source_name,
        root=context.resolve(entry.path),
        pattern=entry.pattern,
        base_url=context.site_url,
        timezone=context.timezone,
    )


KIND = SourceKind(FolderSourceConfig, build)


def _split_front_matter(text: str) -> tuple[dict[str, Any], str, int]:
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        raise ContentError("no front matter: the file must start with a '---' line")
    for index in range(1, len(lines)):
        if lines[index].strip() in ("---", "..."):
            break
    else:
        raise ContentError("front matter is not closed: add a '---' line after it")
    header = "".join(lines[1:index])
    try:
        meta = load_front_matter(header)
    except YamlAliasError as exc:
        raise ContentError(f"line {exc.line + 1}: {exc.message}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = f"line {mark.line + 2}: " if mark else ""
        raise ContentError(f"{line}invalid YAML in front matter: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ContentError(f"invalid YAML in front matter: {exc}") from None
    if not isinstance(meta, dict):
        raise ContentError("front matter must be a mapping of keys (title, date, ...)")
    return meta, "".join(lines[index + 1 :]), index + 2


def _parse_date(value: Any, timezone: ZoneInfo) -> datetime:
    """Dates without a time mean midnight, without a zone the site's zone."""
    if value is None:
        raise ContentError("front matter: 'date' is missing")
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            no_such_day = f": {exc}" if "out of range" in str(exc) else ""  # 2026-11-31
            raise ContentError(
                f"front matter: 'date' {value!r} is not a date{no_such_day} (use 2017-11-14 "
                "or 2017-11-14T10:00:00+01:00)"
            ) from None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone)
    if isinstance(value, date):
        return datetime.combine(value, time(0, 0), tzinfo=timezone)
    raise ContentError(f"front matter: 'date' {value!r} is not a date")


def _optional_url(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise ContentError(f"front matter: '{field}' must be an absolute http(s) URL")
    return value.strip()


def _parse_image(value: Any) -> Image | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = {"src": value}
    if not isinstance(value, dict):
        raise ContentError("front matter: 'image' must be a URL or a mapping with src and alt")
    unknown = set(value) - {"src", "alt", "width", "height"}
    if unknown:
        keys = ", ".join(sorted(unknown))
        raise ContentError(f"front matter: 'image' has unknown key(s): {keys}")
    src = _optional_url(value.get("src"), "image.src")
    if src is None:
        raise ContentError("front matter: 'image.src' is missing")
    dimensions: list[int | None] = []
    for name in ("width", "height"):
        number = value.get(name)
        if number is not None and (not isinstance(number, int) or number <= 0):
            raise ContentError(f"front matter: 'image.{name}' must be a positive whole number")
        dimensions.append(number)
    alt = value.get("alt", "")
    return Image(src=src, alt=str(alt).strip(), width=dimensions[0], height=dimensions[1])


def _parse_tags(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [part for part in value.split(",")]
    if not isinstance(value, list) or not all(isinstance(tag, str | int) for tag in value):
        raise ContentError("front matter: 'tags' must be a list of words")
    return tuple(str(tag).strip() for tag in value if str(tag).strip())
