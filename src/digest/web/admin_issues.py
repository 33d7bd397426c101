"""Staff admin of the issues: every issue with its period, items and counts per state; one
issue's deliveries; staff's resolution of deliveries in doubt (mark delivered, or resend
with a new Message-ID behind a confirmation that a duplicate is possible). Nothing here
resends on its own: a resend starts only from a staff member's confirmed POST."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from digest.catalogue import available_languages, catalogue_language
from digest.message import make_message_id, sender_domain
from digest.overview import delivery_summary, issue_waiting
from digest.send import deliver_issue
from digest.store import DELIVERY_STATES, IN_DOUBT, IssueRow
from digest.web.admin import AdminPage, admin_page, not_found, redirect
from digest.web.guards import staff_form
from digest.web.state import WebState
from digest.web.subscription import language_name

PAGE_SIZE = 50


async def issues_page(request: Request) -> Response:
    page = admin_page(request)
    if isinstance(page, Response):
        return page
    store = page.state.store
    digest = request.query_params.get("digest", "")
    digests = page.state.loaded.config.digests
    issues = await run_in_threadpool(store.list_issues, digest if digest in digests else None, 100)
    ids = [issue.id for issue in issues]
    counts = await run_in_threadpool(store.counts_by_issue, ids)
    feedback = await run_in_threadpool(store.feedback_counts, ids)
    return page.render(
        request, "admin_issues.html", issues=issues, counts=counts, feedback=feedback,
        digests=digests,
        digest=digest, states=DELIVERY_STATES,
    )  # fmt: skip


async def issue_page(request: Request) -> Response:
    found = await _issue_of(request)
    if isinstance(found, Response):
        return found
    page, issue = found
    store, issue_id = page.state.store, issue.id
    state_filter = request.query_params.get("state", "")
    if state_filter not in DELIVERY_STATES:
        state_filter = ""
    after = request.query_params.get("after", "")
    rows = await run_in_threadpool(
        lambda: store.issue_deliveries(
            issue_id,
            status=state_filter or None,
            after=int(after) if after.isdigit() else 0,
            limit=PAGE_SIZE + 1,
        )
    )
    doubtful = await run_in_threadpool(
        lambda: store.issue_deliveries(issue_id, status=IN_DOUBT, limit=500)
    )
    return page.render(
        request,
        "admin_issue.html",
        issue=issue,
        titles=await run_in_threadpool(store.issue_titles, issue_id),
        counts=(await run_in_threadpool(store.counts_by_issue, [issue_id]))[issue_id],
        fb=(await run_in_threadpool(store.feedback_counts, [issue_id]))[issue_id],
        waiting=await run_in_threadpool(issue_waiting, store, issue, page.state.now()),
        variants=await run_in_threadpool(store.variant_counts, issue_id),
        languages={code: language_name(code) for code in available_languages()},
        site_language=catalogue_language(page.state.loaded.config.site.locale),
        rows=rows[:PAGE_SIZE],
        next_after=rows[PAGE_SIZE - 1].id if len(rows) > PAGE_SIZE else None,
        doubtful=doubtful,
        state_filter=state_filter,
        states=DELIVERY_STATES,
    )


async def mark_delivered(request: Request) -> Response:
    issue_id: int = request.path_params["issue_id"]
    post = await staff_form(request, f"issue-mark:{issue_id}")
    if isinstance(post, Response):
        return post
    chosen = _chosen(str(post.form.get("delivery") or ""))
    changed = await run_in_threadpool(
        post.state.store.mark_in_doubt_delivered, issue_id, chosen, post.state.now(),
        post.staff.user,
    )  # fmt: skip
    if not changed:
        return redirect(f"/issues/{issue_id}", "nothing_in_doubt")
    return redirect(f"/issues/{issue_id}", "marked_delivered", n=changed)


async def resend_confirm_page(request: Request) -> Response:
    found = await _issue_of(request)
    if isinstance(found, Response):
        return found
    page, issue = found
    store, issue_id = page.state.store, issue.id
    delivery = request.query_params.get("delivery", "all")
    chosen = _chosen(delivery)
    doubtful = await run_in_threadpool(
        lambda: store.issue_deliveries(issue_id, status=IN_DOUBT, limit=100_000)
    )
    rows = [row for row in doubtful if chosen is None or row.id in chosen]
    return page.render(
        request, "admin_resend.html", issue=issue, rows=rows,
        delivery=delivery if chosen is not None else "all",
    )  # fmt: skip


async def resend(request: Request) -> Response:
    issue_id: int = request.path_params["issue_id"]
    post = await staff_form(request, f"issue-resend:{issue_id}")
    if isinstance(post, Response):
        return post
    state = post.state
    issue = await run_in_threadpool(state.store.find_issue, issue_id)
    if issue is None:
        return not_found(state, request)
    loaded = state.reload_config()
    domain = sender_domain(loaded.config.delivery)
    hint = f"{issue.digest}.{issue.period_key}.resend"
    changed = await run_in_threadpool(
        state.store.resend_in_doubt,
        issue_id,
        _chosen(str(post.form.get("delivery") or "")),
        lambda: make_message_id(domain, hint),
        post.staff.user,
    )
    if not changed:
        return redirect(f"/issues/{issue_id}", "nothing_in_doubt")
    if not state.jobs.start(issue.digest, lambda: _deliver(state, issue_id)):
        # a send of this digest is running: the rows wait, pending, for the next send or
        # for `digest run`, which resumes the issue
        state.jobs.note(state.texts["job_busy"].format(digest=issue.digest))
    return redirect(f"/issues/{issue_id}", "resend_started", n=changed)


def _deliver(state: WebState, issue_id: int) -> str:
    loaded = state.reload_config()
    issue = state.store.issue_by_id(issue_id)
    report = deliver_issue(loaded, state.store, issue, transport=state.transport)
    summary = delivery_summary(report.counts) or "–"
    return state.texts["job_sent"].format(
        digest=issue.digest, period=issue.period_key, summary=summary
    )


async def _issue_of(request: Request) -> tuple[AdminPage, IssueRow] | Response:
    """The admin page and the issue its URL names, or the login redirect or the 404."""
    page = admin_page(request)
    if isinstance(page, Response):
        return page
    issue_id: int = request.path_params["issue_id"]
    issue = await run_in_threadpool(page.state.store.find_issue, issue_id)
    if issue is None:
        return not_found(page.state, request)
    return page, issue


def _chosen(value: str) -> list[int] | None:
    """``all`` (None: every in-doubt row of the issue) or one delivery id."""
    if value.isdigit():
        return [int(value)]
    return None if value == "all" else []


routes = [
    Route("/issues", issues_page, methods=["GET"]),
    Route("/issues/{issue_id:int}", issue_page, methods=["GET"]),
    Route("/issues/{issue_id:int}/mark-delivered", mark_delivered, methods=["POST"]),
    Route("/issues/{issue_id:int}/resend", resend_confirm_page, methods=["GET"]),
    Route("/issues/{issue_id:int}/resend", resend, methods=["POST"]),
]
