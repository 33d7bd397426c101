"""``POST /hooks/<provider>``: bounce and complaint events from SES (via SNS), Postmark,
Mailgun and SendGrid. Public (providers cannot log in), so each request must pass its
provider's verification (:mod:`digest.bounces.hooks`); what fails is answered 403 and kept
nowhere. A provider that is not configured is 404."""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from digest.bounces.events import WebhookRefused
from digest.bounces.hooks import HookRequest
from digest.bounces.service import take_webhook
from digest.web.state import web_state

log = logging.getLogger("digest.web")
MAX_BODY = 1_000_000  # SNS messages are at most 256 KB; SendGrid batches stay well below this


async def hook(request: Request) -> Response:
    state = web_state(request)
    name = request.path_params["provider"]
    provider = state.hooks.get(name)
    if provider is None:
        return PlainTextResponse("not configured\n", status_code=404)
    body = await request.body()
    if len(body) > MAX_BODY:
        return PlainTextResponse("too large\n", status_code=413)
    hook_request = HookRequest({k.lower(): v for k, v in request.headers.items()}, body)
    try:
        result = await run_in_threadpool(
            take_webhook,
            state.store,
            state.loaded.config.bounces,
            name,
            provider,
            hook_request,
            state.clock,
        )
    except WebhookRefused as exc:
        log.warning("webhook %s refused from %s: %s", name, _client(request), exc)
        return PlainTextResponse("refused\n", status_code=403)
    return JSONResponse({"events": result.events, "recorded": result.recorded})


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


routes = [Route("/hooks/{provider}", hook, methods=["POST"])]
