"""What every staff admin page shares: the gate for pages (posts go through
:func:`digest.web.guards.staff_form`: session and a CSRF token bound to the action),
rendering with the CSRF helper, notices after a redirect."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from digest.web.guards import staff_gate
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


def admin_page(request: Request) -> AdminPage | Response:
    state = web_state(request)
    gate = staff_gate(state, request)
    if gate.refusal:
        return gate.refusal
    return AdminPage(state, gate.staff)


# Notices a redirect may ask for (``?notice=key&n=3&email=...``): only these keys.
NOTICES = {
    "saved_subscriber", "unsubscribed_staff", "erased_notice", "added_subscriber",
    "marked_delivered", "resend_started", "nothing_in_doubt",
}  # fmt: skip


def not_found(state: WebState, request: Request) -> Response:
    """The 404 page of an admin URL naming an unknown issue or subscriber."""
    return state.message(
        request, state.texts["not_found_title"], state.texts["not_found_body"], status_code=404
    )


def redirect(path: str, notice: str, **values: str | int) -> RedirectResponse:
    return RedirectResponse(f"{path}?{urlencode({'notice': notice, **values})}", 303)


def _notice(state: WebState, request: Request) -> str:
    key = request.query_params.get("notice", "")
    if key not in NOTICES:
        return ""
    count = request.query_params.get("n", "")
    return state.texts[key].format(count=count if count.isdigit() else "")
