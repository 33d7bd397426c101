"""Staff admin of the subscriber list: search, one subscriber's record, add, edit,
unsubscribe, erase, export. (CSV import: :mod:`digest.web.admin_import`.)"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from digest.catalogue import available_languages, catalogue_language
from digest.store import SUBSCRIBER_ACTIVE, SUBSCRIBER_ERASED, SUBSCRIBER_STATES
from digest.subscribers import (
    AddressError,
    clean_name,
    declared_topics,
    export_csv,
    normalise_address,
)
from digest.web.admin import admin_page, not_found, redirect
from digest.web.guards import staff_form
from digest.web.subscription import language_name

PAGE_SIZE = 50


async def subscribers_page(request: Request) -> Response:
    page = admin_page(request)
    if isinstance(page, Response):
        return page
    params = request.query_params
    digests = page.state.loaded.config.digests
    q = params.get("q", "")[:200]
    digest = params.get("digest", "")
    status = params.get("status", "")
    result = await run_in_threadpool(
        page.state.store.search_subscribers,
        q,
        digest=digest if digest in digests else None,
        status=status if status in SUBSCRIBER_STATES else None,
        after=params.get("after", "")[:320],
        limit=PAGE_SIZE,
    )
    return page.render(
        request,
        "admin_subscribers.html",
        page=result,
        q=q,
        digest=digest,
        status=status,
        digests=digests,
        states=SUBSCRIBER_STATES,
        first=not params.get("after"),
    )


async def subscriber_page(request: Request) -> Response:
    page = admin_page(request)
    if isinstance(page, Response):
        return page
    state = page.state
    record = await run_in_threadpool(state.store.subscriber_record, _id(request))
    if record is None or record.status == SUBSCRIBER_ERASED:
        return not_found(state, request)
    consents = await run_in_threadpool(state.store.consents_for, record.email)
    deliveries = await run_in_threadpool(state.store.deliveries_of, record.id)
    bounces = await run_in_threadpool(state.store.bounces_of, record.id)
    reader = await run_in_threadpool(state.store.reader_settings, record.id)
    site = state.loaded.config.site
    return page.render(
        request,
        "admin_subscriber.html",
        record=record,
        reader=reader,
        language_names={code: language_name(code) for code in available_languages()},
        site_language=catalogue_language(site.locale),
        site_zone=site.tz.key,
        consents=consents,
        deliveries=deliveries,
        bounces=bounces,
        digests=state.loaded.config.digests,
        error=request.query_params.get("error") == "confirm",
    )


async def new_subscriber_page(request: Request) -> Response:
    page = admin_page(request)
    if isinstance(page, Response):
        return page
    return page.render(
        request, "admin_subscriber_new.html", digests=page.state.loaded.config.digests,
        error="", values={"email": "", "name": "", "digests": list(page.state.loaded.config.digests)},
    )  # fmt: skip


async def add_subscriber(request: Request) -> Response:
    post = await staff_form(request, "subscriber-add")
    if isinstance(post, Response):
        return post
    state = post.state
    known = state.loaded.config.digests
    chosen = [name for name in post.form.getlist("digests") if name in known]
    name = clean_name(str(post.form.get("name") or ""))[0]
    raw = str(post.form.get("email") or "")
    error = ""
    try:
        email = normalise_address(raw)
    except AddressError:
        error = state.texts["error_email"]
    else:
        if await run_in_threadpool(state.store.erased_among, [email]):
            error = state.texts["error_erased"]
    if not error and not chosen:
        error = state.texts["error_digests"]
    if error:
        return state.render(
            request, "admin_subscriber_new.html", status_code=422, staff=post.staff,
            can_act=True, notice="", digests=known, error=error,
            values={"email": raw, "name": name, "digests": chosen},
            csrf=lambda purpose: state.signer.csrf_token(purpose, post.staff),
        )  # fmt: skip
    subscriber, _ = await run_in_threadpool(
        state.store.add_subscriber, email, name, chosen, state.now()
    )
    return redirect(f"/subscribers/{subscriber.id}", "added_subscriber")


async def edit_subscriber(request: Request) -> Response:
    post = await staff_form(request, "subscriber-edit")
    if isinstance(post, Response):
        return post
    known = post.state.loaded.config.digests
    chosen = [name for name in post.form.getlist("digests") if name in known]
    name = clean_name(str(post.form.get("name") or ""))[0]
    subscriber_id = _id(request)
    if not await run_in_threadpool(
        lambda: post.state.store.update_subscriber(subscriber_id, name=name, digest_names=chosen)
    ):
        return not_found(post.state, request)
    return redirect(f"/subscribers/{subscriber_id}", "saved_subscriber")


async def unsubscribe_subscriber(request: Request) -> Response:
    post = await staff_form(request, "subscriber-unsubscribe")
    if isinstance(post, Response):
        return post
    subscriber_id = _id(request)
    await run_in_threadpool(post.state.store.unsubscribe, subscriber_id, post.state.now())
    return redirect(f"/subscribers/{subscriber_id}", "unsubscribed_staff")


async def erase_subscriber(request: Request) -> Response:
    post = await staff_form(request, "subscriber-erase")
    if isinstance(post, Response):
        return post
    subscriber_id = _id(request)
    if post.form.get("confirm") != "yes":
        return redirect(f"/subscribers/{subscriber_id}", "", error="confirm")
    if not await run_in_threadpool(
        post.state.store.erase_subscriber, subscriber_id, post.state.now()
    ):
        return not_found(post.state, request)
    return redirect("/subscribers", "erased_notice")


async def export_subscribers(request: Request) -> Response:
    page = admin_page(request)
    if isinstance(page, Response):
        return page
    store = page.state.store
    rows = await run_in_threadpool(store.list_subscribers, None, SUBSCRIBER_ACTIVE)
    readers = await run_in_threadpool(store.readers)
    return Response(
        export_csv(rows, readers, declared_topics(page.state.loaded.config.digests)),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="subscribers.csv"',
            "Cache-Control": "no-store",
        },
    )


def _id(request: Request) -> int:
    value: int = request.path_params["subscriber_id"]
    return value


routes = [
    Route("/subscribers", subscribers_page, methods=["GET"]),
    Route("/subscribers/new", new_subscriber_page, methods=["GET"]),
    Route("/subscribers/new", add_subscriber, methods=["POST"]),
    Route("/subscribers/export.csv", export_subscribers, methods=["GET"]),
    Route("/subscribers/{subscriber_id:int}", subscriber_page, methods=["GET"]),
    Route("/subscribers/{subscriber_id:int}/edit", edit_subscriber, methods=["POST"]),
    Route("/subscribers/{subscriber_id:int}/unsubscribe", unsubscribe_subscriber, methods=["POST"]),
    Route("/subscribers/{subscriber_id:int}/erase", erase_subscriber, methods=["POST"]),
]
