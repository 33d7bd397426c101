"""Editor preview of the next issue: views, metadata, chosen and held-back items, check
findings, raw downloads, and live reload when content, templates or the config change."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from digest.catalogue import available_languages, catalogue_language
from digest.collect import collect, newest_first
from digest.compose import (
    ComposedIssue,
    compose_next_issue,
    lint_issue,
    sample_message,
    sample_recipient,
)
from digest.config import FolderSourceConfig, LoadedConfig
from digest.errors import DigestError
from digest.message import Splicer
from digest.models import Item, Problem
from digest.render import template_paths
from digest.sources import sources_for
from digest.store import Store
from digest.variants import Profile
from digest.web.guards import staff_gate
from digest.web.headers import EMAIL_CSP
from digest.web.state import WebState, web_state
from digest.web.subscription import language_name

VIEWS = ("desktop", "mobile", "dark", "text")
RAW_TYPES = {
    "html": "text/html; charset=utf-8",
    "txt": "text/plain; charset=utf-8",
    "eml": "message/rfc822",
}
_LOCATION = re.compile(r"^(?P<file>[^\s:'\"][^:'\"]*?):(?P<line>\d+)\b")
_DARK_MEDIA = re.compile(r"@media\s*\(\s*prefers-color-scheme\s*:\s*dark\s*\)")


class UnknownDigest(Exception):
    pass


@dataclass(frozen=True)
class Preview:
    loaded: LoadedConfig
    issue: ComposedIssue
    raw: bytes
    problems: list[Problem]
    recipients: int
    at: datetime
    not_in_issue: list[tuple[Item, str]]


def not_in_issue(
    loaded: LoadedConfig, store: Store, issue: ComposedIssue, at: datetime
) -> list[tuple[Item, str]]:
    """Items of the digest's content folders that an editor may miss in this issue, with the
    reason: drafts, items dated after the cutoff, items of the period that an earlier issue
    already took. (Folders only: they are local and cheap to read again; feeds are not
    fetched twice.)"""
    folders = {
        entry.source_name
        for entry in loaded.config.sources
        if isinstance(entry, FolderSourceConfig)
    }
    sources = [source for source in sources_for(loaded, issue.digest) if source.name in folders]
    if not sources:
        return []
    shown = {item.uid for item in (*issue.items, *issue.left_out)}
    unsent = {stored.item.uid for stored in store.unsent_items(issue.digest)}
    known = store.known_uids()
    period = issue.period
    result: list[tuple[Item, str]] = []
    for item in newest_first(collect(sources, at).items):
        if item.uid in shown:
            continue
        if item.draft:
            result.append((item, "draft"))
        elif item.published_at > period.end:
            result.append((item, "future"))
        elif period.contains(item.published_at) and item.uid in known and item.uid not in unsent:
            result.append((item, "sent"))
    return result


@dataclass(frozen=True)
class Excerpt:
    path: str
    line: int
    lines: list[tuple[int, str]]


def _at(state: WebState, request: Request) -> datetime | None:
    value = request.query_params.get("at")
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=state.loaded.config.site.tz)


def _chosen_topics(request: Request) -> list[str]:
    """``?topics=Schule,Jugend`` or, from the form's checkboxes, ``?topics=Schule&topics=Jugend``."""
    given = (
        part.strip()
        for value in request.query_params.getlist("topics")
        for part in value.split(",")
    )
    return sorted({topic for topic in given if topic})


def _reader(request: Request) -> Profile | None:
    """The variant asked for: a language and topics (either may be left out)."""
    language = request.query_params.get("lang", "")
    topics = _chosen_topics(request)
    if not language and not topics:
        return None
    return Profile(language if language in available_languages() else None, frozenset(topics))


def _build(
    state: WebState, digest: str, at: datetime | None, reader: Profile | None = None
) -> Preview:
    loaded = state.reload_config()
    if digest not in loaded.config.digests:
        raise UnknownDigest(digest)
    moment = at or state.now()
    issue = compose_next_issue(loaded, state.store, digest, moment, reader=reader)
    raw = sample_message(loaded, issue, moment)
    problems = list(issue.problems)
    problems += lint_issue(loaded, issue, moment)
    return Preview(
        loaded,
        issue,
        raw,
        problems,
        state.store.count_active(digest),
        moment,
        not_in_issue(loaded, state.store, issue, moment),
    )


def _excerpt(state: WebState, message: str) -> Excerpt | None:
    """The lines around ``file:line`` at the start of an error, if the file is the site's
    or one of the packaged templates."""
    match = _LOCATION.match(message)
    if not match:
        return None
    path = Path(match.group("file"))
    line = int(match.group("line"))
    if not path.is_absolute():
        path = state.config_path.parent / path
    allowed = [
        state.config_path.parent.resolve(),
        *(p.resolve() for p in template_paths(state.loaded)),
    ]
    try:
        resolved = path.resolve()
        if not any(resolved.is_relative_to(root) for root in allowed) or not resolved.is_file():
            return None
        text = resolved.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    first = max(1, line - 4)
    last = min(len(text), line + 4)
    return Excerpt(str(path), line, [(n, text[n - 1]) for n in range(first, last + 1)])


async def preview_index(request: Request) -> Response:
    state = web_state(request)
    gate = staff_gate(state, request)
    if gate.refusal:
        return gate.refusal
    first = next(iter(state.loaded.config.digests))
    return RedirectResponse(f"/preview/{first}", status_code=303)


async def preview(request: Request) -> Response:
    state = web_state(request)
    gate = staff_gate(state, request)
    if gate.refusal:
        return gate.refusal
    name: str = request.path_params["name"]
    digest, dot, kind = name.rpartition(".")
    if not dot:
        digest, kind = name, ""
    if kind and kind not in RAW_TYPES:
        return state.message(request, state.texts["not_found_title"], name, status_code=404)
    at = _at(state, request)
    try:
        built = await run_in_threadpool(_build, state, digest, at, _reader(request))
    except UnknownDigest:
        return state.message(
            request, state.texts["not_found_title"], state.texts["not_found_body"], status_code=404
        )
    except DigestError as exc:
        if kind:
            return PlainTextResponse(f"{exc}\n", status_code=422)
        excerpt = await run_in_threadpool(_excerpt, state, str(exc))
        return state.render(
            request,
            "preview_error.html",
            staff=gate.staff,
            digest=digest,
            error=str(exc),
            excerpt=excerpt,
        )
    if kind:
        return _raw(built, kind, request)
    view = request.query_params.get("view", "desktop")
    if view not in VIEWS:
        view = "desktop"
    recipient = sample_recipient(built.loaded, built.issue.language)
    query = {
        key: request.query_params[key] for key in ("at", "lang") if request.query_params.get(key)
    }
    if topics := _chosen_topics(request):
        query["topics"] = ",".join(topics)
    frame_query = dict(query, scheme="dark") if view == "dark" else query
    errors = sum(problem.severity == "error" for problem in built.problems)
    return state.render(
        request,
        "preview.html",
        staff=gate.staff,
        name=digest,
        digests=built.loaded.config.digests,
        digest=built.loaded.digest(digest),
        issue=built.issue,
        problems=built.problems,
        errors=errors,
        recipients=built.recipients,
        at=built.at,
        view=view,
        views=VIEWS,
        query=query,
        urlencode=urlencode,
        frame_src=f"/preview/{digest}.html" + (f"?{urlencode(frame_query)}" if frame_query else ""),
        text=Splicer(built.issue.rendered.text, escape_html=False).fill(recipient),
        max_items=built.loaded.digest(digest).max_items,
        not_in_issue=built.not_in_issue,
        live=state.watcher is not None,
        languages=[(code, language_name(code)) for code in available_languages()],
        reader_language=request.query_params.get("lang")
        or catalogue_language(built.loaded.config.site.locale),
        reader_topics=topics,
    )


def _raw(built: Preview, kind: str, request: Request) -> Response:
    recipient = sample_recipient(built.loaded, built.issue.language)
    rendered = built.issue.rendered
    filename = f"{built.issue.digest}-{built.issue.period.slug}.{kind}"
    if kind == "html":
        html = Splicer(rendered.html, escape_html=True).fill(recipient)
        if request.query_params.get("scheme") == "dark":
            html = _DARK_MEDIA.sub("@media all", html)
        return HTMLResponse(html, headers={"Content-Security-Policy": EMAIL_CSP})
    if kind == "txt":
        body = Splicer(rendered.text, escape_html=False).fill(recipient).encode()
    else:
        body = built.raw
    return Response(
        body,
        media_type=RAW_TYPES[kind],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def events(request: Request) -> Response:
    state = web_state(request)
    gate = staff_gate(state, request)
    if gate.refusal:
        return gate.refusal
    if state.watcher is None:
        return PlainTextResponse("live reload is off\n", status_code=404)
    return StreamingResponse(
        state.watcher.events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


routes = [
    Route("/preview", preview_index),
    Route("/preview/", preview_index),
    Route("/preview/events", events),
    Route("/preview/{name}", preview),
]
