"""What every staff admin page shares: the gate for pages and for posts (login and a CSRF
token bound to the action and the session), rendering with the CSRF helper, notices after a
redirect."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from digest.web.guards import forbidden, staff_gate
from digest.web.security import Staff
from digest.web.state import WebState, web_state


@dataclass(frozen=True)
class AdminPage:
    state: WebState
    staff: Staff | None

    def render(self, request: Request, template: str, **context: Any) -> Response:
        staff = self.staff
        return self.state.render(
            request,
            template,
            staff=staff,
            can_act=staff is not None,
            csrf=lambda purpose: self.state.signer.csrf_token(purpose, staff),
            notice=_notice(self.state, request),
            **context,
        )


@dataclass(frozen=True)
class AdminPost:
    state: WebState
    staff: Staff
    form: FormData


def admin_page(request: Request) -> AdminPage | Response:
    state = web_state(request)
    gate = staff_gate(state, request)
    if gate.refusal:
        return gate.refusal
    return AdminPage(state, gate.staff)


async def admin_post(request: Request, purpose: str) -> AdminPost | Response:
    """A logged-in staff member's POST carrying a valid CSRF token for ``purpose``, or the
    response that refuses it (403)."""
    state = web_state(request)
    gate = staff_gate(state, request, action=True)
    if gate.refusal:
        return gate.refusal
    form = await request.form()
    token = str(form.get("csrf") or "")
    if gate.staff is None or not state.signer.check_csrf(token, purpose, gate.staff):
        return forbidden(state, request)
    return AdminPost(state, gate.staff, form)


# Notices a redirect may ask for (``?notice=key&n=3&email=...``): only these keys.
NOTICES = {
    "saved_subscriber", "unsubscribed_staff", "erased_notice", "added_subscriber",
    "marked_delivered", "resend_started", "nothing_in_doubt",
}  # fmt: skip


def redirect(path: str, notice: str, **values: str | int) -> RedirectResponse:
    return RedirectResponse(f"{path}?{urlencode({'notice': notice, **values})}", 303)


def _notice(state: WebState, request: Request) -> str:
    key = request.query_params.get("notice", "")
    if key not in NOTICES:
        return ""
    count = request.query_params.get("n", "")
    return state.texts[key].format(count=count if count.isdigit() else "")
