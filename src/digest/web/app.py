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
from datetime import UTC, datetime, timedelta
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from digest.bounces.hooks import Fetcher, fetch_https, providers
from digest.config import FolderSourceConfig, LoadedConfig, load_config
from digest.store import Store
from digest.transport import Transport
from digest.web.archive import routes as archive_routes
from digest.web.headers import EMAIL_CSP, PAGE_CSP, SecurityHeaders
from digest.web.hooks import routes as hook_routes
from digest.web.jobs import Jobs
from digest.web.preview import routes as preview_routes
from digest.web.reload import ChangeWatcher
from digest.web.security import RateLimiter, Signer
from digest.web.sessions import SessionPolicy, Sessions
from digest.web.staff import routes as staff_routes
from digest.web.state import WebState, page_environment, web_state
from digest.web.subscription import routes as subscription_routes
from digest.web.texts import texts_for
from digest.web.theme import theme_route

__all__ = ["EMAIL_CSP", "PAGE_CSP", "WebState", "create_app", "web_state"]

log = logging.getLogger("digest.web")

SECRET_ENV = "DIGEST_SECRET_KEY"
LOGIN_WINDOW = 15 * 60  # seconds: the login limits count within this window


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


def create_app(
    config_path: Path,
    *,
    public_only: bool = False,
    clock: Callable[[], datetime] | None = None,
    transport: Transport | None = None,
    environ: Mapping[str, str] | None = None,
    watch: bool = True,
    sns_fetch: Fetcher = fetch_https,
) -> Starlette:
    """Build the app for the site at ``config_path``. ``clock``, ``transport``, ``environ``
    and ``sns_fetch`` (how SES webhooks get SNS certificates) replace the real ones in tests;
    ``watch`` starts the live-reload watcher."""
    env = os.environ if environ is None else environ
    loaded = load_config(config_path, environ=env)
    web = loaded.config.web
    lang, texts = texts_for(loaded.translator)
    store = Store.open(loaded.database_url)
    watcher = ChangeWatcher(watched_paths(loaded)) if watch and not public_only else None
    clock = clock or (lambda: datetime.now(UTC))
    signer = Signer(_secret_key(loaded, env))
    sessions = Sessions(
        store,
        signer,
        user=web.staff_user,
        password_hash=web.staff_password_hash,
        policy=SessionPolicy(
            idle=timedelta(minutes=web.session_idle_minutes),
            lifetime=timedelta(hours=web.session_max_hours),
        ),
        clock=clock,
    )
    if public_only:
        sessions.login_token = None  # no staff pages: no login link either
    sessions.end_stale()
    state = WebState(
        config_path=config_path,
        loaded=loaded,
        store=store,
        signer=signer,
        sessions=sessions,
        public_only=public_only,
        clock=clock,
        transport=transport,
        environ=env,
        watcher=watcher,
        lang=lang,
        texts=texts,
        pages=page_environment(loaded.translator),
        signup_limit=RateLimiter(web.signups_per_ip_per_hour, 3600),
        login_limit=RateLimiter(web.login_attempts_per_client, LOGIN_WINDOW),
        account_limit=RateLimiter(web.login_failures_per_account, LOGIN_WINDOW),
        jobs=Jobs(texts, clock),
        hooks=providers(loaded.config.bounces.webhooks, sns_fetch),
    )

    routes: list[BaseRoute] = [
        Route("/theme.css", theme_route(loaded)),
        Mount("/static", StaticFiles(packages=[("digest.web", "static")]), name="static"),
        *subscription_routes,
        *archive_routes,
        *hook_routes,
    ]
    if public_only:
        routes.append(Route("/", lambda request: RedirectResponse("/subscribe", 303)))
    else:
        routes += [*staff_routes, *preview_routes]

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
