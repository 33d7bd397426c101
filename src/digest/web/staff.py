"""Staff pages: login, dashboard, "send now" and "test-send to me" (background threads)."""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from digest.compose import compose_next_issue, next_issue_summary, vet_issue
from digest.ledger import IssueRefused, NothingToSend
from digest.nextissue import now_period
from digest.overview import delivery_summary, overview
from digest.send import NoSubscribers, send_digest, send_test_copy
from digest.subscribers import AddressError, normalise_address
from digest.transport import default_transport
from digest.web.guards import forbidden, staff_action, staff_gate
from digest.web.security import SESSION_COOKIE, client_ip, client_key, host_allowed, verify_password
from digest.web.sessions import LOGIN_TOKEN_PARAM
from digest.web.state import WebState, web_state
from digest.words import issue_status


def _safe_next(value: str | None) -> str:
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


# -- login ------------------------------------------------------------------------------------


async def login_page(request: Request) -> Response:
    """The login form; with ``?token=`` the one-time login link of a server without a
    password (good once: it opens a session and leaves the token out of the next URL)."""
    state = web_state(request)
    if not host_allowed(request, state.loaded.config.web.allowed_hosts):
        return staff_gate(state, request).refusal or forbidden(state, request)
    token = request.query_params.get(LOGIN_TOKEN_PARAM)
    if token is not None:
        return await _login_with_link(state, request, token)
    return _login_form(state, request, error=None)


async def _login_with_link(state: WebState, request: Request, token: str) -> Response:
    if not state.login_limit.allow(client_key(client_ip(request))):
        return _rate_limited(state, request)
    if not state.sessions.use_login_token(token):
        return state.message(
            request, state.texts["login_link_used_title"], state.texts["login_link_used_body"],
            status_code=403, role="alert",
        )  # fmt: skip
    return await _logged_in(state, request, "/")


def _login_form(
    state: WebState, request: Request, *, error: str | None, status_code: int = 200
) -> Response:
    return state.render(
        request,
        "login.html",
        status_code=status_code,
        error=error,
        configured=state.sessions.password_set,
        next=_safe_next(request.query_params.get("next")),
        csrf=state.signer.csrf_token("login"),
    )


def _rate_limited(state: WebState, request: Request) -> Response:
    return state.message(
        request, state.texts["rate_limited_title"], state.texts["rate_limited_body"],
        status_code=429, role="alert",
    )  # fmt: skip


async def login(request: Request) -> Response:
    """Password login, limited per client address and per account (failed attempts)."""
    state = web_state(request)
    web = state.loaded.config.web
    if not host_allowed(request, web.allowed_hosts):
        return staff_gate(state, request).refusal or forbidden(state, request)
    form = await request.form()
    if not state.signer.check_csrf(str(form.get("csrf") or ""), "login"):
        return forbidden(state, request)
    if not state.sessions.password_set:
        return _login_form(state, request, error=None, status_code=403)
    user = str(form.get("user") or "")[:200]
    account = user.strip().casefold()
    if not state.login_limit.allow(client_key(client_ip(request))) or (
        state.account_limit.blocked(account)
    ):
        return _rate_limited(state, request)
    password = str(form.get("password") or "")
    ok = await run_in_threadpool(verify_password, password, web.staff_password_hash)
    if not ok or not hmac.compare_digest(user.encode(), web.staff_user.encode()):
        state.account_limit.hit(account)
        return _login_form(state, request, error=state.texts["login_failed"], status_code=401)
    return await _logged_in(state, request, _safe_next(str(form.get("next") or "/")))


async def _logged_in(state: WebState, request: Request, target: str) -> Response:
    cookie = await run_in_threadpool(state.sessions.open)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=int(state.sessions.policy.lifetime.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


async def logout(request: Request) -> Response:
    """Ends the session in the store: a copy of the cookie opens nothing afterwards."""
    state = web_state(request)
    gate = staff_gate(state, request, action=True)
    if gate.refusal is not None or gate.staff is None:
        return gate.refusal or forbidden(state, request)
    form = await request.form()
    if not state.signer.check_csrf(str(form.get("csrf") or ""), "logout", gate.staff):
        return forbidden(state, request)
    await run_in_threadpool(state.sessions.close, gate.staff)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="strict")
    return response


# -- dashboard --------------------------------------------------------------------------------


async def dashboard(request: Request) -> Response:
    state = web_state(request)
    gate = staff_gate(state, request)
    if gate.refusal:
        return gate.refusal
    data = await run_in_threadpool(_dashboard_data, state)
    return state.render(
        request,
        "dashboard.html",
        staff=gate.staff,
        can_act=gate.staff is not None,
        csrf=lambda purpose: state.signer.csrf_token(purpose, gate.staff),
        jobs=state.jobs.messages(),
        **data,
    )


def _dashboard_data(state: WebState) -> dict[str, Any]:
    now = state.now()
    status = overview(state.loaded, state.store, now, state.loaded.translator)
    current = state.reload_config()  # the next issue follows content and config edits
    return {
        "rows": status.digests,
        "upcoming": {
            row.name: next_issue_summary(current, state.store, row.name, now)
            for row in status.digests
        },
        "sources": [source for source in status.sources if source.configured],
        "in_doubt": status.in_doubt,
        "consents": state.store.recent_consents(10),
        "now": now,
        "staff_email": state.loaded.config.web.staff_email or "",
    }


# -- actions ----------------------------------------------------------------------------------


async def send_page(request: Request) -> Response:
    state = web_state(request)
    gate = staff_gate(state, request)
    if gate.refusal:
        return gate.refusal
    name = request.path_params["digest"]
    loaded = state.loaded
    if name not in loaded.config.digests:
        return state.message(request, state.texts["not_found_title"], name, status_code=404)
    offer = await run_in_threadpool(_send_offer, state, name)
    return state.render(
        request,
        "send_confirm.html",
        staff=gate.staff,
        name=name,
        digest=loaded.digest(name),
        body=offer["body"],
        sendable=offer["sendable"],
        after=offer["after"],
        can_act=gate.staff is not None,
        csrf=state.signer.csrf_token(f"send:{name}", gate.staff),
    )


def _send_offer(state: WebState, name: str) -> dict[str, Any]:
    """What "send now" would send: the off-schedule issue cut at this moment. The form
    carries the latest issue's id: a second post of it (a double click, a reload) finds a
    newer issue in the ledger and sends nothing."""
    loaded = state.reload_config()
    now = state.now()
    latest = state.store.latest_issue(name)
    upcoming = now_period(loaded, state.store, name, now)
    issue = compose_next_issue(loaded, state.store, name, now, upcoming=upcoming)
    count = state.store.count_active(name)
    start = issue.period.start
    since = state.formatters.datetime(start, "short") if start else "–"
    texts = state.texts
    if not issue.items:
        body = texts["send_now_nothing"].format(since=since)
    elif count == 0:
        body = texts["no_subscribers_alert"]
    else:
        body = texts["send_now_body"].format(since=since, items=len(issue.items), count=count)
    return {
        "body": body,
        "sendable": bool(issue.items),
        "after": str(latest.id) if latest else "none",
    }


async def send_now(request: Request) -> Response:
    action = await staff_action(request, "send")
    if isinstance(action, Response):
        return action
    state, name = action.state, action.digest
    seen = str(action.form.get("after") or "")
    if seen != "none" and not seen.isdigit():
        return forbidden(state, request)
    after = None if seen == "none" else int(seen)
    started = state.jobs.start(name, lambda: _send_job(state, name, after))
    state.jobs.note(state.texts["job_started" if started else "job_busy"].format(digest=name))
    return RedirectResponse("/", status_code=303)


async def test_send(request: Request) -> Response:
    action = await staff_action(request, "test")
    if isinstance(action, Response):
        return action
    state, name = action.state, action.digest
    try:
        address = normalise_address(str(action.form.get("address") or ""))
    except AddressError:
        state.jobs.note(f"{name}: {state.texts['error_email']}")  # the reason is English
        return RedirectResponse("/", status_code=303)
    started = state.jobs.start(name, lambda: _test_job(state, name, address))
    key = "job_test_started" if started else "job_busy"
    state.jobs.note(state.texts[key].format(digest=name, address=address))
    return RedirectResponse("/", status_code=303)


def _send_job(state: WebState, name: str, after: int | None) -> str:
    """The off-schedule issue cut now, vetted like every send; ``after`` makes a repeat of
    the same form a refusal in the ledger."""
    loaded = state.reload_config()
    texts = state.texts
    now = state.now()
    upcoming = now_period(loaded, state.store, name, now)
    try:
        result = send_digest(
            loaded,
            state.store,
            name,
            now,
            transport=state.transport,
            period=upcoming.period,
            vet=vet_issue(loaded, name),
            after=after,
            record_empty=False,
            at_once=True,  # staff's send now: deliver_at does not apply
        )
    except NothingToSend:
        return texts["job_nothing_new"].format(digest=name)
    except NoSubscribers:
        return texts["job_no_subscribers"].format(digest=name)
    except IssueRefused as exc:
        if exc.problems:
            first = exc.problems[0]
            finding = f"{first.where}: {first.message}"
            return texts["job_held"].format(digest=name, count=len(exc.problems), finding=finding)
        latest = state.store.latest_issue(name)
        period = latest.period_key if latest else "–"
        return texts["job_repeat"].format(digest=name, period=period)
    issue = result.prepared.issue
    if result.report is None:
        return texts["job_nothing"].format(
            digest=name,
            period=issue.period_key,
            status=issue_status(loaded.translator, issue.status),
        )
    summary = delivery_summary(result.report.counts, loaded.translator)
    return texts["job_sent"].format(digest=name, period=issue.period_key, summary=summary or "–")


def _test_job(state: WebState, name: str, address: str) -> str:
    loaded = state.reload_config()
    transport = state.transport or default_transport(loaded)
    issue = send_test_copy(
        loaded, state.store, name, state.now(), address, transport, datetime.now(UTC)
    )
    return loaded.translator.ngettext(
        "%(digest)s: test copy (%(num)s item) sent to %(address)s; nothing marked",
        "%(digest)s: test copy (%(num)s items) sent to %(address)s; nothing marked",
        len(issue.items),
        digest=name,
        address=address,
    )


routes = [
    Route("/", dashboard),
    Route("/login", login_page, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/send/{digest}", send_page, methods=["GET"]),
    Route("/send/{digest}", send_now, methods=["POST"]),
    Route("/test-send/{digest}", test_send, methods=["POST"]),
]
