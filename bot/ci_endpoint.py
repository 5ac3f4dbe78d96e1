"""``POST /ci/deploy``: a CI job deploys an image it pushed, with a bearer token.

The request becomes the chat deploy ``deploy APP --env ENV --image IMAGE`` run as the
token's caller (``ci:NAME``), so the grant, the approval gate, the lock and the audit are
the chat's own. ``add_ci_routes`` plugs the route into any aiohttp application (the
webhook server of ``shipbot serve``, or a test's).

Answers (JSON): 200 live, 202 waiting for approval (its id), 400 a bad body, 401 no valid
token, 403 not allowed, 413 body too large, 422 the deploy failed (why, and the last log
lines), 500 shipbot's own error.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from commands.dispatch import Dispatcher
from commands.pipelines import (
    PipelineError,
    audit_refusal,
    ci_body,
    ci_caller,
    ci_deploy,
    deploy_request,
)
from commands.replies import DENIED, INTERNAL, USAGE, ApprovalRequest, Failure, Log, Reply, Result

log = logging.getLogger("shipbot.ci")
PATH = "/ci/deploy"
MAX_BODY = 16 * 1024  # an app, an environment and an image reference fit many times over
LOG_LINES = 20


def add_ci_routes(app: web.Application, dispatcher: Dispatcher, path: str = PATH) -> None:
    async def handle(request: web.Request) -> web.Response:
        return await _deploy(dispatcher, request)

    app.router.add_post(path, handle)


def _answer(code: int, /, **body: Any) -> web.Response:
    return web.json_response(body, status=code)


def _bearer(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def _body(request: web.Request) -> Any:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=request.content_length)
    raw = bytearray()
    async for chunk in request.content.iter_chunked(4096):  # a body may come in many
        raw += chunk
        if len(raw) > MAX_BODY:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=len(raw))
    return ci_body(bytes(raw))


async def _deploy(dispatcher: Dispatcher, request: web.Request) -> web.Response:
    token = _bearer(request)
    caller = await asyncio.to_thread(ci_caller, dispatcher, token) if token else None
    if caller is None:
        why = "no valid CI token" if token else "no bearer token"
        await asyncio.to_thread(audit_refusal, dispatcher, "ci:unknown", why)
        return _answer(401, status="unauthorized", message=f"{why}: send Authorization: Bearer …")
    try:
        chat = deploy_request(caller, await _body(request))
    except web.HTTPRequestEntityTooLarge:
        return _answer(413, status="too_large", message=f"the body is over {MAX_BODY} bytes")
    except PipelineError as exc:
        return _answer(400, status="bad_request", message=str(exc))
    except PermissionError as exc:
        await asyncio.to_thread(audit_refusal, dispatcher, caller.user, str(exc))
        return _answer(403, status="denied", message=str(exc))
    try:
        replies = await ci_deploy(dispatcher, chat)
    except Exception:
        log.exception("CI deploy %r from %s failed", chat.text, caller.user)
        return _answer(500, status="error", message="shipbot hit an internal error; see its log")
    return _summary(replies)


def _summary(replies: list[Reply]) -> web.Response:
    lines = [r.text for r in replies if isinstance(r, Log)][-LOG_LINES:]
    for reply in replies:
        if isinstance(reply, ApprovalRequest):
            return _answer(
                202,
                status="pending_approval",
                approval=reply.id,
                message=f"{reply.summary}: waiting for approval {reply.id} in chat",
            )
        if isinstance(reply, Result):
            body = {"message": reply.title, "details": list(reply.details), **reply.fields}
            if reply.ok:
                return _answer(200, status="live", **body)
            return _answer(422, status="failed", log=list(reply.log_tail) or lines, **body)
        if isinstance(reply, Failure):
            code = {USAGE: 400, DENIED: 403, INTERNAL: 500}.get(reply.kind, 422)
            status = {400: "bad_request", 403: "denied", 500: "error"}.get(code, "failed")
            return _answer(code, status=status, message=reply.message, log=list(reply.log_tail))
    return _answer(500, status="error", message="the deploy ended without a result")
