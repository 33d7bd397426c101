"""CSV import in the browser: upload, a preview of the column mapping and of the rows that
will be rejected, then the import as a background job whose progress the page shows. The
file is read by :func:`digest.subscribers.parse_csv` and written by
:func:`digest.subscribers.import_rows`, as ``digest subscribers import`` does."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from digest.errors import DigestError
from digest.subscribers import ImportReport, declared_topics, import_rows, parse_csv
from digest.web.admin import admin_page
from digest.web.guards import staff_form
from digest.web.imports import BATCH, ImportJob
from digest.web.state import WebState

MAX_UPLOAD = 50 * 1024 * 1024
PREVIEW_ROWS = 5


async def import_page(request: Request) -> Response:
    page = admin_page(request)
    if isinstance(page, Response):
        return page
    return page.render(request, "admin_import.html", error="")


async def import_preview(request: Request) -> Response:
    post = await staff_form(request, "import-preview")
    if isinstance(post, Response):
        return post
    state = post.state
    upload = post.form.get("file")
    error = ""
    job: ImportJob | None = None
    if not isinstance(upload, UploadFile) or not upload.filename:
        error = state.texts["import_error"].format(error="–")
    else:
        data = await upload.read(MAX_UPLOAD + 1)
        source = upload.filename.replace("\n", " ")[:200]
        try:
            if len(data) > MAX_UPLOAD:
                raise DigestError(f"{source}: larger than {MAX_UPLOAD // 2**20} MB")
            try:
                text = data.decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                raise DigestError(f"{source}: not UTF-8 ({exc.reason})") from None
            config = state.loaded.config
            known = list(config.digests)
            parsed = await run_in_threadpool(
                lambda: parse_csv(
                    text, known_digests=known, default_digests=known, source=source,
                    topics=declared_topics(config.digests), translator=state.loaded.translator,
                )
            )  # fmt: skip
        except DigestError as exc:
            error = state.texts["import_error"].format(error=exc)
        else:
            job = state.imports.add(source, parsed)
    if job is None:
        return state.render(
            request, "admin_import.html", status_code=422, staff=post.staff, can_act=True,
            notice="", error=error,
            csrf=lambda purpose: state.signer.csrf_token(purpose, post.staff),
        )  # fmt: skip
    return RedirectResponse(f"/subscribers/import/{job.id}", 303)


async def import_job_page(request: Request) -> Response:
    page = admin_page(request)
    if isinstance(page, Response):
        return page
    job = page.state.imports.get(request.path_params["job"])
    if job is None:
        return _expired(page.state, request)
    return page.render(
        request,
        "admin_import_job.html",
        job=job,
        sample=job.parsed.rows[:PREVIEW_ROWS],
        skipped=_skipped(job.report),
    )


async def import_job_progress(request: Request) -> Response:
    page = admin_page(request)
    if isinstance(page, Response):
        return page
    job = page.state.imports.get(request.path_params["job"])
    if job is None:
        return JSONResponse({"error": "unknown"}, status_code=404)
    return JSONResponse(
        {"done": job.done, "total": job.total, "finished": job.finished},
        headers={"Cache-Control": "no-store"},
    )


async def import_start(request: Request) -> Response:
    post = await staff_form(request, "import-start")
    if isinstance(post, Response):
        return post
    state = post.state
    job = state.imports.get(request.path_params["job"])
    if job is None:
        return _expired(state, request)
    state.imports.start(job, lambda job: _run(state, job))
    return RedirectResponse(f"/subscribers/import/{job.id}", 303)


def _run(state: WebState, job: ImportJob) -> ImportReport:
    def progress(done: int) -> None:
        job.done = done

    return import_rows(
        job.parsed, state.store, now=state.now(), source=job.source, batch=BATCH,
        progress=progress, translator=state.loaded.translator,
    )  # fmt: skip


def _skipped(report: ImportReport | None) -> int:
    return 0 if report is None else len(report.problems)


def _expired(state: WebState, request: Request) -> Response:
    return state.message(
        request, state.texts["import_title"], state.texts["import_expired"], status_code=404,
        link=("/subscribers/import", state.texts["import_csv"]),
    )  # fmt: skip


routes = [
    Route("/subscribers/import", import_page, methods=["GET"]),
    Route("/subscribers/import", import_preview, methods=["POST"]),
    Route("/subscribers/import/{job}", import_job_page, methods=["GET"]),
    Route("/subscribers/import/{job}/progress", import_job_progress, methods=["GET"]),
    Route("/subscribers/import/{job}/start", import_start, methods=["POST"]),
]
