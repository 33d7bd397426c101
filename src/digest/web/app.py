"""The ``digest serve`` application: Starlette routes over the same library calls as the CLI.

Public pages (subscribe, confirm, unsubscribe, preferences, archive) need no login and never
set a cookie. Staff pages (dashboard, preview, send actions) answer only the allowed Host
names and, once a staff password is configured, only a logged-in user.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digest.config import FolderSourceConfig, LoadedConfig, load_config
from digest.i18n import Formatters
from digest.store import Store
from digest.transport import Transport
from digest.web.reload import ChangeWatcher
from digest.web.security import RateLimiter, Signer, Staff
from digest.web.texts import texts_for

log = logging.getLogger("digest.web")

SECRET_ENV = "DIGEST_SECRET_KEY"
PAGE_CSP = (
    "default-src 'self'; img-src 'self' https: http: data:; style-src 'self'; "
    "script-src 'self'; frame-src 'self'; frame-ancestors 'self'; form-action 'self'; "
    "base-uri 'none'; object-src 'none'"
)
# The email's own HTML (preview frame, archive): inline styles, remote images, nothing else.
EMAIL_CSP = (
    "default-src 'none'; img-src https: http: data:; style-src 'unsafe-inline'; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)


@dataclass
class WebState:
    config_path: Path
    loaded: LoadedConfig  # as loaded at start: security settings, public pages
    store: Store
    signer: Signer
    public_only: bool
    clock: Callable[[], datetime]
    transport: Transport | None
    environ: Mapping[str, str]
    watcher: ChangeWatcher | None
    lang: str
    texts: dict[str, str]
    pages: jinja2.Environment
    signup_limit: RateLimiter
    login_limit: RateLimiter
    jobs: Any = None  # digest.web.staff.Jobs
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def formatters(self) -> Formatters:
        site = self.loaded.config.site
        return Formatters(site.locale, site.tz)

    def reload_config(self) -> LoadedConfig:
        """The config as it is on disk now (the preview follows edits)."""
        return load_config(self.config_path, environ=self.environ)

    def now(self) -> datetime:
        return self.clock()

    def render(
        self,
        request: Request,
        template: str,
        *,
        status_code: int = 200,
        staff: Staff | None = None,
        **context: Any,
    ) -> HTMLResponse:
        site = self.loaded.config.site
        html = self.pages.get_template(template).render(
            request=request,
            t=self.texts,
            lang=self.lang,
            site=site,
            fmt=self.formatters,
            staff=staff,
            staff_pages=not self.public_only,
            logout_csrf=self.signer.csrf_token("logout", staff) if staff else "",
            **context,
        )
        return HTMLResponse(html, status_code=status_code)

    def message(
        self,
        request: Request,
        title: str,
        body: str,
        *,
        status_code: int = 200,
        link: tuple[str, str] | None = None,
        role: str = "status",
    ) -> HTMLResponse:
        return self.render(
            request,
            "message.html",
            status_code=status_code,
            title=title,
            body=body,
            link=link,
            role=role,
        )


def web_state(request: Request) -> WebState:
    state: WebState = request.app.state.web
    return state


def _secret_key(loaded: LoadedConfig, environ: Mapping[str, str]) -> str:
    configured = loaded.config.web.secret_key.get_secret_value()
    if configured:
        return configured
    if environ.get(SECRET_ENV):
        return environ[SECRET_ENV]
    log.warning(
        "web.secret_key and $%s are not set: using a random key; logins end on restart",
        SECRET_ENV,
    )
    return secrets.token_urlsafe(32)


def watched_paths(loaded: LoadedConfig) -> list[Path]:
    paths = [loaded.path, loaded.templates_dir]
    for source in loaded.config.sources:
        if isinstance(source, FolderSourceConfig):
            paths.append(loaded.resolve(source.path))
    return paths


def page_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("digest.web", "templates"),
        autoescape=jinja2.select_autoescape(("html", "xml", "atom")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def theme_css(loaded: LoadedConfig) -> str:
    """The accent colour as CSS variables; too light an accent falls back to a dark one so
    white button text keeps a 4.5:1 contrast."""
    accent = loaded.config.site.accent_color
    if contrast(accent, "#ffffff") < 4.5:
        accent = "#1f4e79"
    return f":root {{ --accent: {accent}; }}\n"


def contrast(first: str, second: str) -> float:
    def luminance(color: str) -> float:
        channels = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(first), luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


class SecurityHeaders:
    """Default security headers on every response (a route may set its own CSP)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                defaults = {
                    b"x-content-type-options": b"nosniff",
                    b"referrer-policy": b"no-referrer",  # tokens live in our URLs
                    b"x-frame-options": b"SAMEORIGIN",
                    b"content-security-policy": PAGE_CSP.encode(),
                }
                headers += [(k, v) for k, v in defaults.items() if k not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(
    config_path: Path,
    *,
    public_only: bool = False,
    clock: Callable[[], datetime] | None = None,
    transport: Transport | None = None,
    environ: Mapping[str, str] | None = None,
    watch: bool = True,
) -> Starlette:
    """Build the app for the site at ``config_path``. ``clock``, ``transport`` and
    ``environ`` replace the real ones in tests; ``watch`` starts the live-reload watcher."""
    from digest.web import archive, hooks, preview, staff, subscription

    env = os.environ if environ is None else environ
    loaded = load_config(config_path, environ=env)
    web = loaded.config.web
    lang, texts = texts_for(loaded.config.site.locale)
    store = Store.open(loaded.database_url)
    watcher = ChangeWatcher(watched_paths(loaded)) if watch and not public_only else None
    state = WebState(
        config_path=config_path,
        loaded=loaded,
        store=store,
        signer=Signer(_secret_key(loaded, env)),
        public_only=public_only,
        clock=clock or (lambda: datetime.now(UTC)),
        transport=transport,
        environ=env,
        watcher=watcher,
        lang=lang,
        texts=texts,
        pages=page_environment(),
        signup_limit=RateLimiter(web.signups_per_ip_per_hour, 3600),
        login_limit=RateLimiter(10, 900),
    )
    state.jobs = staff.Jobs(state)

    async def theme(request: Request) -> Response:
        return Response(
            theme_css(loaded), media_type="text/css", headers={"Cache-Control": "max-age=300"}
        )

    routes: list[BaseRoute] = [
        Route("/theme.css", theme),
        Mount("/static", StaticFiles(packages=[("digest.web", "static")]), name="static"),
        *subscription.routes,
        *archive.routes,
        *hooks.routes,
    ]
    if public_only:
        routes.append(Route("/", lambda request: RedirectResponse("/subscribe", 303)))
    else:
        routes += [*staff.routes, *preview.routes]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if watcher is not None:
            watcher.start()
        try:
            yield
        finally:
            if watcher is not None:
                watcher.stop()
            state.jobs.wait(timeout=10)
            store.close()

    async def not_found(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        s = web_state(request)
        if exc.status_code == 404:
            return s.message(
                request, texts["not_found_title"], texts["not_found_body"], status_code=404
            )
        return Response(exc.detail, status_code=exc.status_code)

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: not_found},
    )
    app.state.web = state
    app.add_middleware(SecurityHeaders)
    return app
