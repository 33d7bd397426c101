"""Who may see and do what on the staff pages: the Host check, the login, the CSRF token and
a known digest, in one place for every staff route."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from digest.web.security import Staff, host_allowed, is_loopback
from digest.web.state import WebState, web_state


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
            return Gate(None, forbidden(state, request))
        target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        return Gate(None, RedirectResponse(f"/login?next={target}", status_code=303))
    if action:
        return Gate(None, forbidden(state, request, texts["actions_locked"]))
    if not is_loopback(request):
        return Gate(None, forbidden(state, request, texts["login_not_configured"]))
    return Gate(None, None)


def forbidden(state: WebState, request: Request, body: str | None = None) -> Response:
    return state.message(
        request,
        state.texts["forbidden_title"],
        body or state.texts["forbidden_body"],
        status_code=403,
        role="alert",
    )


@dataclass(frozen=True)
class StaffAction:
    state: WebState
    digest: str
    form: FormData


async def staff_action(request: Request, purpose: str) -> StaffAction | Response:
    """A logged-in staff member's POST with a valid CSRF token for ``purpose:<digest>`` about a
    configured digest, or the response that refuses it."""
    state = web_state(request)
    gate = staff_gate(state, request, action=True)
    if gate.refusal:
        return gate.refusal
    name = request.path_params["digest"]
    form = await request.form()
    if not state.signer.check_csrf(str(form.get("csrf") or ""), f"{purpose}:{name}", gate.staff):
        return forbidden(state, request)
    if name not in state.loaded.config.digests:
        return forbidden(state, request)
    return StaffAction(state, name, form)
