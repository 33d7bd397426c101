"""Who may see and do what on the staff pages: the Host check, the login session, the CSRF
token and a known digest, in one place for every staff route.

Every staff page starts with :func:`staff_gate` (GET) or :func:`staff_form` /
:func:`staff_action` (POST): the request is answered only for an allowed Host and an open
staff session (:mod:`digest.web.sessions`); a POST also needs the CSRF token of its form.
There is no anonymous staff access: without ``web.staff_password_hash`` the session comes
from the one-time login link ``digest serve`` prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from digest.web.security import Staff, host_allowed
from digest.web.state import WebState, web_state


@dataclass(frozen=True)
class Gate:
    staff: Staff | None  # set whenever refusal is None
    refusal: Response | None


def staff_gate(state: WebState, request: Request, *, action: bool = False) -> Gate:
    """Host check, then the session. A page (GET) without a session redirects to the login;
    an action (``action=True`` or any other method) is refused with 403."""
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
    staff = state.sessions.current(request)
    if staff is not None:
        return Gate(staff, None)
    if action or request.method != "GET":
        return Gate(None, forbidden(state, request))
    target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    return Gate(None, RedirectResponse(f"/login?next={target}", status_code=303))


def forbidden(state: WebState, request: Request, body: str | None = None) -> Response:
    return state.message(
        request,
        state.texts["forbidden_title"],
        body or state.texts["forbidden_body"],
        status_code=403,
        role="alert",
    )


@dataclass(frozen=True)
class StaffForm:
    state: WebState
    staff: Staff
    form: FormData


async def staff_form(request: Request, purpose: str) -> StaffForm | Response:
    """A logged-in staff member's POST whose CSRF token was made for ``purpose`` (as
    ``state.signer.csrf_token(purpose, gate.staff)`` in the page with the form), or the
    response that refuses it (403)."""
    state = web_state(request)
    gate = staff_gate(state, request, action=True)
    if gate.refusal is not None or gate.staff is None:
        return gate.refusal or forbidden(state, request)
    form = await request.form()
    if not state.signer.check_csrf(str(form.get("csrf") or ""), purpose, gate.staff):
        return forbidden(state, request)
    return StaffForm(state, gate.staff, form)


@dataclass(frozen=True)
class StaffAction:
    state: WebState
    digest: str
    form: FormData


async def staff_action(request: Request, purpose: str) -> StaffAction | Response:
    """A logged-in staff member's POST with a valid CSRF token for ``purpose:<digest>`` about a
    configured digest, or the response that refuses it."""
    name = request.path_params["digest"]
    checked = await staff_form(request, f"{purpose}:{name}")
    if isinstance(checked, Response):
        return checked
    if name not in checked.state.loaded.config.digests:
        return forbidden(checked.state, request)
    return StaffAction(checked.state, name, checked.form)
