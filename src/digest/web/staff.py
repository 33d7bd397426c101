"""Staff pages: login, dashboard, "send now" and "test-send to me" (background threads)."""

from __future__ import annotations

import hmac
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from digest.errors import DigestError
from digest.health import describe_state
from digest.send import send_digest, send_test_copy
from digest.sources import build_sources
from digest.subscribers import AddressError, normalise_address
from digest.transport import TransportOutcome, default_transport
from digest.web.app import WebState, web_state
from digest.web.security import (
    SESSION_COOKIE,
    SESSION_MAX_AGE,
    Staff,
    client_ip,
    host_allowed,
    is_loopback,
    verify_password,
)

if TYPE_CHECKING:
    pass

log = logging.getLogger("digest.web")


# -- access -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gate:
    staff: Staff | None
    refusal: Response | None


def staff_gate(state: WebState, request: Request, *, action: bool = False) -> Gate:
    """Host check, then login. Without a configured password, read-only staff pages answer
    loopback clients and every action is refused."""
    texts = state.texts
    web = state.loaded.config.web
    if not host_allowed(request, web.allowed_hosts):
        return Gate(
            None,
            state.message(
                request, texts["bad_host_title"], texts["bad_host_body"], status_code=400,
                role="alert",
            ),
        )  # fmt: skip
    staff = state.signer.staff(request)
    if web.staff_password_hash:
        if staff is not None and hmac.compare_digest(staff.user, web.staff_user):
            return Gate(staff, None)
        if action or request.method != "GET":
            return Gate(None, _forbidden(state, request))
        target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        return Gate(None, RedirectResponse(f"/login?next={target}", status_code=303))
    if action:
        return Gate(None, _forbidden(state, request, texts["actions_locked"]))
    if not is_loopback(request):
        return Gate(None, _forbidden(state, request, texts["login_not_configured"]))
    return Gate(None, None)


def _forbidden(state: WebState, request: Request, body: str | None = None) -> Response:
    return state.message(
        request,
        state.texts["forbidden_title"],
        body or state.texts["forbidden_body"],
        status_code=403,
        role="alert",
    )


def _safe_next(value: str | None) -> str:
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


# -- login ------------------------------------------------------------------------------------


async def login_page(request: Request) -> Response:
    state = web_state(request)
    if not host_allowed(request, state.loaded.config.web.allowed_hosts):
        return staff_gate(state, request).refusal or _forbidden(state, request)
    return _login_form(state, request, error=None)


def _login_form(
    state: WebState, request: Request, *, error: str | None, status_code: int = 200
) -> Response:
    return state.render(
        request,
        "login.html",
        status_code=status_code,
        error=error,
        configured=bool(state.loaded.config.web.staff_password_hash),
        next=_safe_next(request.query_params.get("next")),
        csrf=state.signer.csrf_token("login"),
    )


async def login(request: Request) -> Response:
    state = web_state(request)
    web = state.loaded.config.web
    if not host_allowed(request, web.allowed_hosts):
        return staff_gate(state, request).refusal or _forbidden(state, request)
    form = await request.form()
    if not state.signer.check_csrf(str(form.get("csrf") or ""), "login"):
        return _forbidden(state, request)
    if not state.login_limit.allow(client_ip(request)):
        return state.message(
            request, state.texts["rate_limited_title"], state.texts["rate_limited_body"],
            status_code=429, role="alert",
        )  # fmt: skip
    user = str(form.get("user") or "")
    password = str(form.get("password") or "")
    ok = bool(web.staff_password_hash) and await run_in_threadpool(
        verify_password, password, web.staff_password_hash
    )
    if not ok or not hmac.compare_digest(user.encode(), web.staff_user.encode()):
        return _login_form(state, request, error=state.texts["login_failed"], status_code=401)
    response = RedirectResponse(_safe_next(str(form.get("next") or "/")), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        state.signer.session_cookie(web.staff_user),
        max_age=SESSION_MAX_AGE,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


async def logout(request: Request) -> Response:
    state = web_state(request)
    gate = staff_gate(state, request, action=True)
    if gate.refusal:
        return gate.refusal
    form = await request.form()
    if not state.signer.check_csrf(str(form.get("csrf") or ""), "logout", gate.staff):
        return _forbidden(state, request)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
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
        can_act=bool(state.loaded.config.web.staff_password_hash),
        csrf=lambda purpose: state.signer.csrf_token(purpose, gate.staff),
        jobs=state.jobs.messages(),
        **data,
    )


def _dashboard_data(state: WebState) -> dict[str, Any]:
    loaded, store, now = state.loaded, state.store, state.now()
    rows = []
    for name, digest in loaded.config.digests.items():
        latest = store.latest_issue(name)
        rows.append(
            {
                "name": name,
                "digest": digest,
                "next_fire": loaded.schedule(name).next_fire(now),
                "latest": latest,
                "counts": {k: v for k, v in store.counts(latest.id).items() if v} if latest else {},
                "active": store.count_active(name),
            }
        )
    consents = store.recent_consents(10)
    health = store.source_states()
    timezone = loaded.config.site.tz
    sources = [
        (
            source.name,
            health.get(source.name),
            health[source.name].ok if source.name in health else None,
        )
        for source in build_sources(loaded)
    ]
    return {
        "rows": rows,
        "sources": [
            (name, describe_state(state, timezone) if state else None, ok)
            for name, state, ok in sources
        ],
        "in_doubt": store.in_doubt(),
        "consents": consents,
        "now": now,
        "staff_email": loaded.config.web.staff_email or "",
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
    now = state.now()
    end = loaded.schedule(name).period_ending(now).end
    count = await run_in_threadpool(state.store.count_active, name)
    return state.render(
        request,
        "send_confirm.html",
        staff=gate.staff,
        name=name,
        digest=loaded.digest(name),
        body=state.texts["send_confirm_body"].format(
            end=state.formatters.datetime(end, "short"), count=count
        ),
        can_act=bool(loaded.config.web.staff_password_hash),
        csrf=state.signer.csrf_token(f"send:{name}", gate.staff),
    )


@dataclass(frozen=True)
class _StaffAction:
    state: WebState
    digest: str
    form: FormData


async def _staff_action(request: Request, purpose: str) -> _StaffAction | Response:
    """A logged-in staff member's POST with a valid CSRF token for ``purpose:<digest>`` about a
    configured digest, or the response that refuses it."""
    state = web_state(request)
    gate = staff_gate(state, request, action=True)
    if gate.refusal:
        return gate.refusal
    name = request.path_params["digest"]
    form = await request.form()
    if not state.signer.check_csrf(str(form.get("csrf") or ""), f"{purpose}:{name}", gate.staff):
        return _forbidden(state, request)
    if name not in state.loaded.config.digests:
        return _forbidden(state, request)
    return _StaffAction(state, name, form)


async def send_now(request: Request) -> Response:
    action = await _staff_action(request, "send")
    if isinstance(action, Response):
        return action
    state, name = action.state, action.digest
    started = state.jobs.start(name, lambda: _send_job(state, name))
    state.jobs.note(state.texts["job_started" if started else "job_busy"].format(digest=name))
    return RedirectResponse("/", status_code=303)


async def test_send(request: Request) -> Response:
    action = await _staff_action(request, "test")
    if isinstance(action, Response):
        return action
    state, name = action.state, action.digest
    try:
        address = normalise_address(str(action.form.get("address") or ""))
    except AddressError as exc:
        state.jobs.note(f"{name}: {exc}")
        return RedirectResponse("/", status_code=303)
    started = state.jobs.start(name, lambda: _test_job(state, name, address))
    key = "job_test_started" if started else "job_busy"
    state.jobs.note(state.texts[key].format(digest=name, address=address))
    return RedirectResponse("/", status_code=303)


def _send_job(state: WebState, name: str) -> str:
    loaded = state.reload_config()
    result = send_digest(loaded, state.store, name, state.now(), transport=state.transport)
    issue = result.prepared.issue
    texts = state.texts
    if result.report is None:
        return texts["job_nothing"].format(
            digest=name, period=issue.period_key, status=issue.status
        )
    counts = result.report.counts
    summary = ", ".join(f"{count} {status}" for status, count in counts.items() if count)
    return texts["job_sent"].format(digest=name, period=issue.period_key, summary=summary or "–")


def _test_job(state: WebState, name: str, address: str) -> str:
    loaded = state.reload_config()
    transport = state.transport or default_transport(loaded)
    issue = send_test_copy(
        loaded, state.store, name, state.now(), address, transport, datetime.now(UTC)
    )
    return state.texts["job_test_done"].format(digest=name, count=len(issue.items), address=address)


class Jobs:
    """Background sends, one at a time per digest; their outcome is shown on the dashboard."""

    def __init__(self, state: WebState) -> None:
        self.state = state
        self.lock = threading.Lock()
        self.running: dict[str, threading.Thread] = {}
        self.log: deque[tuple[datetime, str]] = deque(maxlen=20)

    def start(self, digest: str, work: Callable[[], str]) -> bool:
        with self.lock:
            current = self.running.get(digest)
            if current is not None and current.is_alive():
                return False
            thread = threading.Thread(
                target=self._run, args=(digest, work), name=f"digest-job-{digest}", daemon=True
            )
            self.running[digest] = thread
        thread.start()
        return True

    def _run(self, digest: str, work: Callable[[], str]) -> None:
        try:
            message = work()
        except (DigestError, TransportOutcome) as exc:
            message = self.state.texts["job_failed"].format(digest=digest, error=exc)
        except Exception as exc:  # shown to staff, logged with its traceback
            log.exception("job for %s failed", digest)
            error = f"{type(exc).__name__}: {exc}"
            message = self.state.texts["job_failed"].format(digest=digest, error=error)
        self.note(message)

    def note(self, message: str) -> None:
        log.info("%s", message)
        with self.lock:
            self.log.appendleft((self.state.now(), message))

    def messages(self) -> list[tuple[datetime, str]]:
        with self.lock:
            return list(self.log)

    def busy(self) -> bool:
        with self.lock:
            return any(thread.is_alive() for thread in self.running.values())

    def wait(self, timeout: float) -> None:
        with self.lock:
            threads = list(self.running.values())
        for thread in threads:
            thread.join(timeout)


routes = [
    Route("/", dashboard),
    Route("/login", login_page, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/send/{digest}", send_page, methods=["GET"]),
    Route("/send/{digest}", send_now, methods=["POST"]),
    Route("/test-send/{digest}", test_send, methods=["POST"]),
]
