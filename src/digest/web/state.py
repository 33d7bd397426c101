"""What every route reads: the loaded site, the store, signer, sessions, texts and page
templates.

:func:`web_state` gives a route the one :class:`WebState` of its app; route modules import this
module, never :mod:`digest.web.app` (which only assembles them).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from digest import words
from digest.bounces.hooks import Provider
from digest.catalogue import Translator, available_languages, translator_for
from digest.config import LoadedConfig, load_config
from digest.i18n import Formatters
from digest.store import Store
from digest.transport import Transport
from digest.web.imports import ImportJobs
from digest.web.jobs import Jobs
from digest.web.reload import ChangeWatcher
from digest.web.security import RateLimiter, Signer, Staff
from digest.web.sessions import Sessions
from digest.web.texts import texts_for


@dataclass
class WebState:
    config_path: Path
    loaded: LoadedConfig  # as loaded at start: security settings, public pages
    store: Store
    signer: Signer
    sessions: Sessions
    public_only: bool
    clock: Callable[[], datetime]
    transport: Transport | None
    environ: Mapping[str, str]
    watcher: ChangeWatcher | None
    lang: str
    texts: dict[str, str]
    pages: jinja2.Environment
    signup_limit: RateLimiter
    login_limit: RateLimiter  # attempts per client
    account_limit: RateLimiter  # failed logins per account name
    jobs: Jobs
    hooks: Mapping[str, Provider]  # the configured webhook providers by route name
    imports: ImportJobs = field(default_factory=ImportJobs)  # CSV imports (admin)
    locale: str | None = None  # dates and numbers: this locale (None: the site's)
    frames: dict[str, WebState] = field(default_factory=dict, repr=False)  # by language

    @property
    def formatters(self) -> Formatters:
        site = self.loaded.config.site
        return Formatters(self.locale or site.locale, site.tz)

    @property
    def translator(self) -> Translator:
        return translator_for(self.locale) if self.locale else self.loaded.translator

    def speaking(self, language: str | None) -> WebState:
        """This state with the words, page templates and date formats of ``language``: the
        frame of a reader's own pages (None or a language without a catalogue: the site's)."""
        if not language or language == self.lang or language not in available_languages():
            return self
        frame = self.frames.get(language)
        if frame is None:
            translator = translator_for(language)
            lang, texts = texts_for(translator)
            frame = dataclasses.replace(
                self, lang=lang, texts=texts, pages=page_environment(translator), locale=lang
            )
            self.frames[language] = frame
        return frame

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
            content_lang=self.loaded.translator.language,  # what the site's own words are in
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


def page_environment(translator: Translator) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("digest.web", "templates"),
        autoescape=jinja2.select_autoescape(("html", "xml", "atom")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    translator.install(env)  # _(), ngettext(), {% trans %} in the site's language
    env.globals["issue_status"] = functools.partial(words.issue_status, translator)
    env.globals["delivery_count"] = functools.partial(words.delivery_count, translator)
    env.globals["severity"] = functools.partial(words.severity, translator)
    return env
