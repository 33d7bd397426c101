"""Public archive: every sent issue as frozen HTML without personal links, an index per
digest and an Atom feed."""

from __future__ import annotations

from datetime import datetime

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from digest.config import LoadedConfig
from digest.i18n import labels_for
from digest.message import Recipient, Splicer
from digest.store import ISSUE_DONE, ISSUE_PAUSED, ISSUE_SENDING, IssueRow
from digest.web.headers import EMAIL_CSP
from digest.web.state import web_state

PUBLISHED = (ISSUE_SENDING, ISSUE_PAUSED, ISSUE_DONE)


def neutral_recipient(loaded: LoadedConfig, language: str | None = None) -> Recipient:
    """What the archive shows instead of one subscriber's greeting and links (in
    ``language``, a reader variant's; default the site's)."""
    labels = labels_for(language or loaded.config.site.locale)
    base = loaded.config.site.links_url
    return Recipient(
        email="",
        name="",
        unsubscribe_url=f"{base}/unsubscribe",
        preferences_url=f"{base}/subscribe",
        greeting=labels["greeting_anonymous"],
    )


def issue_slug(loaded: LoadedConfig, issue: IssueRow) -> str:
    """The slug the email's "view in browser" link uses (period end in the digest's zone)."""
    return issue.period_end.astimezone(loaded.digest_timezone(issue.digest)).strftime(
        "%Y-%m-%d-%H%M"
    )


def published_issues(loaded: LoadedConfig, issues: list[IssueRow]) -> list[IssueRow]:
    return [issue for issue in issues if issue.status in PUBLISHED and issue.item_count > 0]


def _digest_or_404(loaded: LoadedConfig, name: str) -> None:
    if name not in loaded.config.digests:
        raise HTTPException(404)


async def archive_index(request: Request) -> Response:
    state = web_state(request)
    return state.render(request, "archive_index.html", digests=state.loaded.config.digests)


async def digest_index(request: Request) -> Response:
    state = web_state(request)
    loaded = state.loaded
    name = request.path_params["digest"]
    _digest_or_404(loaded, name)
    issues = published_issues(loaded, await run_in_threadpool(state.store.list_issues, name, 500))
    return state.render(
        request,
        "archive_digest.html",
        name=name,
        digest=loaded.digest(name),
        issues=[(issue, issue_slug(loaded, issue)) for issue in issues],
    )


async def feed(request: Request) -> Response:
    state = web_state(request)
    loaded = state.loaded
    name = request.path_params["digest"]
    _digest_or_404(loaded, name)
    issues = published_issues(loaded, await run_in_threadpool(state.store.list_issues, name, 50))
    base = loaded.config.site.links_url
    entries = [
        {
            "issue": issue,
            "url": f"{base}/archive/{name}/{issue_slug(loaded, issue)}",
            "updated": _iso(issue.completed_at or issue.created_at),
        }
        for issue in issues
    ]
    updated = entries[0]["updated"] if entries else _iso(state.now())
    body = state.pages.get_template("feed.atom").render(
        site=loaded.config.site,
        digest=loaded.digest(name),
        feed_url=f"{base}/archive/{name}/feed.atom",
        index_url=f"{base}/archive/{name}",
        updated=updated,
        entries=entries,
        lang=state.lang,
    )
    return Response(body, media_type="application/atom+xml; charset=utf-8")


async def issue_page(request: Request) -> Response:
    state = web_state(request)
    loaded = state.loaded
    name = request.path_params["digest"]
    slug = request.path_params["slug"]
    _digest_or_404(loaded, name)
    issues = published_issues(loaded, await run_in_threadpool(state.store.list_issues, name, 5000))
    for issue in issues:
        if issue_slug(loaded, issue) == slug:
            html, language = issue.html, None
            wanted = request.query_params.get("variant")
            if wanted:  # a reader variant's "view in browser": that variant (else the own)
                variants = await run_in_threadpool(state.store.issue_variants, issue.id)
                for variant in variants:
                    if variant.key == wanted:
                        html, language = variant.html, variant.language
            recipient = neutral_recipient(loaded, language)
            html = Splicer(html, escape_html=True).fill(recipient)
            return HTMLResponse(html, headers={"Content-Security-Policy": EMAIL_CSP})
    raise HTTPException(404)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


routes = [
    Route("/archive", archive_index),
    Route("/archive/", archive_index),
    Route("/archive/{digest}", digest_index),
    Route("/archive/{digest}/", digest_index),
    Route("/archive/{digest}/feed.atom", feed),
    Route("/archive/{digest}/{slug}", issue_page),
]
