"""Subscribe (double opt-in), confirm, unsubscribe (page and RFC 8058 one-click), preferences.

Every answer to the sign-up form is the same whether or not the address is known: the
confirmation mail goes to the address's owner, who alone learns anything from it.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from babel import Locale
from babel.lists import format_list
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from digest.cadence import CadenceGroup, cadence_groups
from digest.catalogue import available_languages, catalogue_language
from digest.config import DigestConfig, LoadedConfig
from digest.dkim import signer_for
from digest.errors import DigestError
from digest.headers import NAME_MAX, single_line
from digest.message import envelope_sender, make_message_id, sender_domain
from digest.overview import delivery_summary
from digest.store import (
    SUBSCRIBER_ACTIVE,
    SUBSCRIBER_UNSUBSCRIBED,
    Consent,
    IssueRow,
    Subscriber,
)
from digest.subscribers import AddressError, normalise_address
from digest.transport import TransportOutcome, default_transport
from digest.web.security import client_ip, client_key
from digest.web.state import WebState, web_state
from digest.web.zones import known_zone, utc_offset, zone_groups

log = logging.getLogger("digest.web")

HONEYPOT = "website"
ONE_CLICK = ("List-Unsubscribe", "One-Click")


def _choices(state: WebState) -> dict[str, Any]:
    """What the sign-up and preferences pages offer, in the page's language: the digests as
    cadence questions (digests over the same sources: "how often?") and plain choices, and
    the digests whose readers may choose topics."""
    groups = cadence_groups(state.loaded, state.now(), state.translator, state.formatters.locale)
    questions = [group for group in groups if len(group.options) > 1]
    return {
        "questions": [(_question(state, group, len(questions)), group) for group in questions],
        "singles": [group.options[0] for group in groups if len(group.options) == 1],
        "topic_digests": {
            name: digest for name, digest in state.loaded.config.digests.items() if digest.topics
        },
    }


def _question(state: WebState, group: CadenceGroup, count: int) -> str:
    if count == 1:
        return state.texts["cadence_question"]
    titles = format_list(
        [option.title for option in group.options], style="or", locale=state.formatters.locale
    )
    return state.texts["cadence_question_named"].format(digests=titles)


def _topics_from(
    form: FormData, digests: dict[str, DigestConfig], chosen: list[str]
) -> dict[str, list[str]]:
    """The topics ticked for each chosen digest that declares topics (none: every topic)."""
    return {
        name: [
            t
            for t in form.getlist(f"topics-{name}")
            if isinstance(t, str) and t in digests[name].topics
        ]
        for name in chosen
        if digests[name].topics
    }


# -- subscribe --------------------------------------------------------------------------------


def _subscribe_form(
    state: WebState,
    request: Request,
    *,
    values: dict[str, object] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    digests = state.loaded.config.digests
    # Nothing ticked: consent to a digest is the subscriber's act, not the form's default.
    values = values or {
        "email": "",
        "name": "",
        "digests": [],
        "topics": {},
        "language": browser_language(request, state.loaded),
    }
    response = state.render(
        request,
        "subscribe.html",
        status_code=status_code,
        digests=digests,
        **_choices(state),
        values=values,
        errors=errors or {},
        csrf=state.signer.csrf_token("subscribe"),
        languages=[(code, language_name(code)) for code in available_languages()],
        consent=state.texts["consent_text"].format(site=state.loaded.config.site.title),
    )
    # The form page may tell our own /subscribe where it was (consent log: form URL).
    response.headers["Referrer-Policy"] = "same-origin"
    return response


async def subscribe_page(request: Request) -> Response:
    return _subscribe_form(web_state(request), request)


async def subscribe(request: Request) -> Response:
    state = web_state(request)
    texts = state.texts
    form = await request.form()
    loaded = state.loaded
    chosen = [name for name in form.getlist("digests") if name in loaded.config.digests]
    topics = _topics_from(form, loaded.config.digests, chosen)
    values: dict[str, object] = {
        "email": str(form.get("email") or "")[:320],
        "name": str(form.get("name") or "")[:NAME_MAX],
        "digests": chosen,
        "topics": topics,
        "language": language
        if (language := _text(form, "language")) in available_languages()
        else browser_language(request, loaded),
    }
    if not state.signer.check_csrf(_text(form, "csrf"), "subscribe"):
        return _subscribe_form(
            state, request, values=values, errors={"form": texts["error_form"]}, status_code=400
        )
    if _text(form, HONEYPOT):  # a bot filled the invisible field: pretend all went well
        return _sent_page(state, request)
    errors: dict[str, str] = {}
    try:
        email = normalise_address(str(values["email"]))
    except AddressError:
        errors["email"] = texts["error_email"]
    if not chosen:
        errors["digests"] = texts["error_digests"]
    if errors:
        return _subscribe_form(state, request, values=values, errors=errors, status_code=422)
    if not state.signup_limit.allow(client_key(client_ip(request))):
        return state.message(
            request,
            texts["rate_limited_title"],
            texts["rate_limited_body"],
            status_code=429,
            role="alert",
        )
    try:
        await run_in_threadpool(
            _sign_up,
            state,
            email,
            single_line(str(values["name"])),
            chosen,
            request,
            str(values["language"]),
            topics,
        )
    except (DigestError, TransportOutcome) as exc:
        log.error("confirmation mail to %s not sent: %s", email, exc)
        return state.message(
            request,
            texts["send_failed_title"],
            texts["send_failed_body"],
            status_code=503,
            role="alert",
        )
    return _sent_page(state, request)


def _sent_page(state: WebState, request: Request) -> Response:
    days = f"{state.loaded.config.web.signup_expiry_days:g}"
    return state.message(
        request,
        state.texts["subscribe_sent_title"],
        state.texts["subscribe_sent_body"].format(days=days),
    )


def browser_language(request: Request, loaded: LoadedConfig) -> str:
    """The catalogue language the browser prefers (Accept-Language), else the site's."""
    offered = available_languages()
    wanted = [
        part.split(";")[0].strip().replace("-", "_")
        for part in request.headers.get("accept-language", "").split(",")
    ]
    found = Locale.negotiate([w for w in wanted if w], offered, sep="_")
    return str(found.language) if found else catalogue_language(loaded.config.site.locale)


def _sign_up(
    state: WebState,
    email: str,
    name: str,
    digests: list[str],
    request: Request,
    language: str | None = None,
    topics: dict[str, list[str]] | None = None,
) -> None:
    """Record the request and mail the confirmation link, unless this address has asked too
    often lately (then silently nothing: the page says the same either way)."""
    web = state.loaded.config.web
    now = state.now()
    store = state.store
    store.expire_consents(now)
    if store.consents_since(email, now - timedelta(days=1)) >= web.signups_per_address_per_day:
        log.info("sign-up for %s ignored: per-address limit reached", email)
        return
    consent = store.add_consent(
        email=email,
        name=name,
        digest_names=digests,
        now=now,
        expires_at=now + timedelta(days=web.signup_expiry_days),
        request_ip=client_ip(request),
        request_user_agent=request.headers.get("user-agent", ""),
        form_url=request.headers.get("referer") or str(request.url),
        consent_version=web.consent_version,
        language=language,
        topics=topics,
    )
    send_confirmation(state, consent)


def confirmation_message(state: WebState, consent: Consent) -> bytes:
    """A short transactional mail in the language asked for at sign-up: the link and what it
    is for, nothing else."""
    state = state.speaking(consent.language)
    loaded = state.loaded
    site = loaded.config.site
    texts = state.texts
    context = {
        "t": texts,
        "lang": state.lang,
        "site": site,
        "digests": _asked_for(state, consent),
        "url": f"{site.links_url}/confirm/{consent.token}",
        "body": texts["mail_body"].format(site=site.title),
        "expiry": texts["mail_expiry"].format(days=f"{loaded.config.web.signup_expiry_days:g}"),
    }
    message = EmailMessage()
    message["From"] = loaded.config.delivery.from_
    message["To"] = consent.email
    message["Subject"] = texts["mail_subject"].format(site=single_line(site.title))
    message["Date"] = format_datetime(state.now())
    message["Message-ID"] = make_message_id(sender_domain(loaded.config.delivery), "confirm")
    message["Auto-Submitted"] = "auto-generated"
    if loaded.config.delivery.reply_to:
        message["Reply-To"] = loaded.config.delivery.reply_to
    message.set_content(state.pages.get_template("confirm_mail.txt").render(context))
    message.add_alternative(
        state.pages.get_template("confirm_mail.html").render(context), subtype="html"
    )
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


def send_confirmation(state: WebState, consent: Consent) -> None:
    loaded = state.loaded
    transport = state.transport or default_transport(loaded)
    data = confirmation_message(state, consent)
    signer = signer_for(loaded.config.delivery.dkim, loaded.resolve)
    if signer is not None:
        data = signer.sign(data, state.now())
    connection = transport.connect()
    try:
        connection.send(envelope_sender(loaded.config.delivery), consent.email, data, lambda: None)
    finally:
        connection.close()


# -- confirm ----------------------------------------------------------------------------------


def _invalid_link(state: WebState, request: Request, status_code: int = 404) -> Response:
    return state.message(
        request,
        state.texts["link_invalid_title"],
        state.texts["link_invalid_body"],
        status_code=status_code,
        link=("/subscribe", state.texts["subscribe_again"]),
    )


def _usable(state: WebState, consent: Consent | None) -> bool:
    return consent is not None and consent.confirmed_at is None and consent.expires_at > state.now()


async def confirm_page(request: Request) -> Response:
    state = web_state(request)
    token = request.path_params["token"]
    consent = await run_in_threadpool(state.store.consent_by_token, token)
    if consent is not None:
        state = state.speaking(consent.language)
    if consent is not None and consent.confirmed_at is not None:
        return _confirmed_page(state, request, consent.email)
    if consent is None or not _usable(state, consent):
        return _invalid_link(state, request, 404 if consent is None else 410)
    return state.render(
        request,
        "confirm.html",
        email=consent.email,
        digests=_asked_for(state, consent),
        csrf=state.signer.csrf_token(f"confirm:{token}"),
    )


def _asked_for(state: WebState, consent: Consent) -> list[str]:
    """The digests a sign-up asks for, in the page's words: ``Wochenüberblick``, or
    ``Wochenüberblick, only on Schule and Jugend`` when it chose topics."""
    digests = state.loaded.config.digests
    lines = []
    for name in consent.digests:
        if name not in digests:
            continue
        digest, chosen = digests[name], consent.topics.get(name, ())
        if not chosen:
            lines.append(digest.title)
            continue
        labels = [digest.topic_label(tag, state.lang) for tag in chosen]
        lines.append(
            state.texts["digest_with_topics"].format(
                digest=digest.title, topics=format_list(labels, locale=state.formatters.locale)
            )
        )
    return lines


async def confirm(request: Request) -> Response:
    state = web_state(request)
    token = request.path_params["token"]
    form = await request.form()
    if not state.signer.check_csrf(_text(form, "csrf"), f"confirm:{token}"):
        return _forbidden(state, request)
    subscriber = await run_in_threadpool(
        state.store.confirm_consent,
        token,
        state.now(),
        client_ip(request),
        request.headers.get("user-agent", ""),
    )
    consent = await run_in_threadpool(state.store.consent_by_token, token)
    reader = state.speaking(consent.language if consent is not None else None)
    if subscriber is None:
        if consent is not None and consent.confirmed_at is not None:
            return _confirmed_page(reader, request, consent.email)  # a double click
        return _invalid_link(reader, request, 404 if consent is None else 410)
    await run_in_threadpool(_welcome, state, subscriber)  # staff read the job: the site's words
    return _confirmed_page(reader, request, subscriber.email, subscriber)


def _welcome(state: WebState, subscriber: Subscriber) -> None:
    """``welcome: latest``: queue the latest issue for the new subscriber and deliver it in
    the background (a row left pending is delivered by the next sender, e.g. ``digest run``)."""
    from digest.send import deliver_issue
    from digest.welcome import add_welcome_deliveries

    for issue in add_welcome_deliveries(state.loaded, state.store, subscriber):

        def work(issue: IssueRow = issue) -> str:
            report = deliver_issue(state.loaded, state.store, issue, transport=state.transport)
            return state.texts["job_sent"].format(
                digest=issue.digest,
                period=issue.period_key,
                summary=delivery_summary(report.counts),
            )

        state.jobs.start(f"welcome:{issue.digest}", work)


def _confirmed_page(
    state: WebState, request: Request, email: str, subscriber: Subscriber | None = None
) -> Response:
    link = None
    if subscriber is not None:
        link = (f"/preferences/{subscriber.token}", state.texts["preferences_title"])
    return state.message(
        request,
        state.texts["confirmed_title"],
        state.texts["confirmed_body"].format(email=email),
        link=link,
    )


# -- unsubscribe ------------------------------------------------------------------------------


async def unsubscribe_info(request: Request) -> Response:
    """``/unsubscribe`` without a token (the archive's neutral link)."""
    state = web_state(request)
    return state.message(
        request, state.texts["unsubscribe_title"], state.texts["unsubscribe_generic"]
    )


async def unsubscribe_page(request: Request) -> Response:
    """GET never changes anything: link scanners and prefetchers open these URLs."""
    state = web_state(request)
    token = request.path_params["token"]
    subscriber = await run_in_threadpool(state.store.subscriber_by_token, token)
    if subscriber is None:
        return _invalid_link(state, request)
    state = await run_in_threadpool(_reader_frame, state, subscriber)
    if subscriber.status == SUBSCRIBER_UNSUBSCRIBED:
        return _unsubscribed_page(state, request, subscriber)
    return state.render(
        request,
        "unsubscribe.html",
        email=subscriber.email,
        token=token,
        csrf=state.signer.csrf_token(f"unsubscribe:{token}"),
        body=state.texts["unsubscribe_body"].format(
            email=subscriber.email, site=state.loaded.config.site.title
        ),
    )


async def unsubscribe(request: Request) -> Response:
    """POST: the page's button (with its CSRF token) or an RFC 8058 one-click request
    (``List-Unsubscribe=One-Click``, no cookies): idempotent, 200, never a redirect."""
    state = web_state(request)
    token = request.path_params["token"]
    form = await request.form()
    one_click = form.get(ONE_CLICK[0]) == ONE_CLICK[1]
    if not one_click and not state.signer.check_csrf(_text(form, "csrf"), f"unsubscribe:{token}"):
        return _forbidden(state, request)
    subscriber = await run_in_threadpool(state.store.subscriber_by_token, token)
    if subscriber is None:
        if one_click:
            return PlainTextResponse("unknown unsubscribe link\n", status_code=404)
        return _invalid_link(state, request)
    await run_in_threadpool(state.store.unsubscribe, subscriber.id, state.now())
    log.info("unsubscribed subscriber %s (%s)", subscriber.id, "one-click" if one_click else "page")
    if one_click:
        return PlainTextResponse("unsubscribed\n", status_code=200)
    state = await run_in_threadpool(_reader_frame, state, subscriber)
    return _unsubscribed_page(state, request, subscriber)


def _reader_frame(state: WebState, subscriber: Subscriber) -> WebState:
    """The state speaking the subscriber's language (None: the site's)."""
    return state.speaking(state.store.reader_settings(subscriber.id).language)


def _unsubscribed_page(state: WebState, request: Request, subscriber: Subscriber) -> Response:
    return state.message(
        request,
        state.texts["unsubscribed_title"],
        state.texts["unsubscribed_body"].format(
            email=subscriber.email, site=state.loaded.config.site.title
        ),
        link=("/subscribe", state.texts["subscribe_again"]),
    )


# -- preferences ------------------------------------------------------------------------------


async def preferences_page(request: Request) -> Response:
    state = web_state(request)
    token = request.path_params["token"]
    subscriber = await run_in_threadpool(state.store.subscriber_by_token, token)
    if subscriber is None:
        return _invalid_link(state, request)
    state = await run_in_threadpool(_reader_frame, state, subscriber)
    if subscriber.status != SUBSCRIBER_ACTIVE:
        return _unsubscribed_page(state, request, subscriber)
    return await run_in_threadpool(_preferences_form, state, request, subscriber)


def _preferences_form(
    state: WebState,
    request: Request,
    subscriber: Subscriber,
    *,
    saved: bool = False,
    values: dict[str, object] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    """The reader's settings (or ``values`` sent back with ``errors``), in ``state``'s
    language: the reader's own."""
    token = subscriber.token
    loaded = state.loaded
    site = loaded.config.site
    if values is None:
        reader = state.store.reader_settings(subscriber.id)
        values = {
            "name": subscriber.name,
            "digests": list(subscriber.digests),
            "language": reader.language or catalogue_language(site.locale),
            "timezone": reader.timezone or "",
            "topics": {digest: list(chosen) for digest, chosen in reader.topics.items()},
        }
    now = state.now()
    site_zone = str(site.tz.key)
    return state.render(
        request,
        "preferences.html",
        status_code=status_code,
        subscriber=subscriber,
        digests=loaded.config.digests,
        **_choices(state),
        values=values,
        errors=errors or {},
        saved=saved,
        token=token,
        csrf=state.signer.csrf_token(f"preferences:{token}"),
        languages=[(code, language_name(code)) for code in available_languages()],
        zone_groups=zone_groups(state.translator, now),
        site_zone=state.texts["timezone_default"].format(
            zone=f"{site_zone.replace('_', ' ')}, {utc_offset(site_zone, now)}"
        ),
        arrivals=_arrivals(state, values),
    )


def _arrivals(state: WebState, values: dict[str, object]) -> list[str]:
    """``“Wochenüberblick” arrives at 07:00 your time.`` for each chosen digest with a local
    delivery time (``deliver_at``)."""
    chosen = values["digests"]
    lines = []
    for name, digest in state.loaded.config.digests.items():
        if digest.deliver_at and isinstance(chosen, list) and name in chosen:
            lines.append(
                state.texts["arrives_at"].format(digest=digest.title, time=digest.deliver_at)
            )
    return lines


def language_name(code: str) -> str:
    """``Deutsch``, ``English``: a language as its own readers call it."""
    return str(Locale.parse(code).get_display_name(code)).capitalize()


async def preferences(request: Request) -> Response:
    state = web_state(request)
    token = request.path_params["token"]
    form = await request.form()
    if not state.signer.check_csrf(_text(form, "csrf"), f"preferences:{token}"):
        return _forbidden(state, request)
    subscriber = await run_in_threadpool(state.store.subscriber_by_token, token)
    if subscriber is None:
        return _invalid_link(state, request)
    if subscriber.status != SUBSCRIBER_ACTIVE:
        state = await run_in_threadpool(_reader_frame, state, subscriber)
        return _unsubscribed_page(state, request, subscriber)
    known = state.loaded.config.digests
    chosen = [name for name in form.getlist("digests") if name in known]
    name = single_line(_text(form, "name"))[:NAME_MAX]
    language = _text(form, "language")
    zone = _text(form, "timezone").strip()
    topics = _topics_from(form, known, [digest for digest in known if known[digest].topics])
    if zone and not known_zone(zone):
        # Refused, nothing saved: the form comes back as sent, in the reader's language.
        state = await run_in_threadpool(_reader_frame, state, subscriber)
        values: dict[str, object] = {
            "name": name,
            "digests": chosen,
            "language": language,
            "timezone": zone,
            "topics": topics,
        }
        return await run_in_threadpool(
            lambda: _preferences_form(
                state,
                request,
                subscriber,
                values=values,
                errors={"timezone": state.texts["error_timezone"].format(zone=zone[:64])},
                status_code=422,
            )
        )

    def save() -> Subscriber | None:
        store, now = state.store, state.now()
        if not chosen:
            store.unsubscribe(subscriber.id, now)
            return None
        before = store.reader_settings(subscriber.id)
        store.set_reader(
            subscriber.id,
            language=language if language in available_languages() else before.language,
            timezone=zone or None,
            topics=topics,
        )
        updated, _ = store.add_subscriber(
            subscriber.email, name, chosen, now, status=SUBSCRIBER_ACTIVE
        )
        for digest in set(updated.digests) - set(chosen):
            store.unsubscribe(subscriber.id, now, digest=digest)
        return store.subscriber_by_token(token)

    updated = await run_in_threadpool(save)
    state = await run_in_threadpool(_reader_frame, state, subscriber)
    if updated is None:
        return _unsubscribed_page(state, request, subscriber)
    return await run_in_threadpool(lambda: _preferences_form(state, request, updated, saved=True))


# -- helpers ----------------------------------------------------------------------------------


def _text(form: FormData, key: str) -> str:
    value = form.get(key)
    return value if isinstance(value, str) else ""


def _forbidden(state: WebState, request: Request) -> Response:
    return state.message(
        request,
        state.texts["forbidden_title"],
        state.texts["error_form"],
        status_code=403,
        role="alert",
    )


routes = [
    Route("/subscribe", subscribe_page, methods=["GET"]),
    Route("/subscribe", subscribe, methods=["POST"]),
    Route("/confirm/{token}", confirm_page, methods=["GET"]),
    Route("/confirm/{token}", confirm, methods=["POST"]),
    Route("/unsubscribe", unsubscribe_info, methods=["GET"]),
    Route("/unsubscribe/{token}", unsubscribe_page, methods=["GET"]),
    Route("/unsubscribe/{token}", unsubscribe, methods=["POST"]),
    Route("/preferences/{token}", preferences_page, methods=["GET"]),
    Route("/preferences/{token}", preferences, methods=["POST"]),
]
