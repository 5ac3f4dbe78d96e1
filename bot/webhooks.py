"""The HTTP side of ``shipbot serve``: one aiohttp server for every route set (Slack's HTTP
mode, git webhooks, and whatever else plugs in), and the webhook endpoint itself.

``POST /hooks/github``, ``/hooks/gitlab``, ``/hooks/gitea``: a delivery is read up to
``pipelines.max_body_bytes`` (shipbot.yml) and handed to ``commands.hooks.Receiver``,
which checks and routes it; the forge gets its answer at once (202) while the deploy runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from aiohttp import web

from commands.hooks import Receiver

log = logging.getLogger("shipbot.webhooks")
CHUNK = 65_536

# Adds routes to the server: ``add_routes(app)``.
RouteSet = Callable[[web.Application], None]


async def read_bounded(request: web.Request, limit: int) -> bytes | None:
    """The body, or None when it is longer than ``limit`` (read no further than that)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    body = bytearray()
    async for chunk in request.content.iter_chunked(CHUNK):
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def hook_routes(receiver: Receiver) -> RouteSet:
    async def delivery(request: web.Request) -> web.Response:
        forge = request.match_info["forge"]
        body = await read_bounded(request, receiver.max_body_bytes)
        if body is None:
            answer = await receiver.too_large(forge, request.content_length)
        else:
            answer = await receiver.receive(forge, request.headers, body)
        log.info("webhook %s from %s: %s %s", forge, request.remote, answer.status, answer.text)
        return web.json_response({"result": answer.text}, status=answer.status)

    def add_routes(app: web.Application) -> None:
        app.router.add_post("/hooks/{forge}", delivery)

    return add_routes


async def start_http(
    host: str, port: int, routes: Iterable[RouteSet], base: web.Application | None = None
) -> web.AppRunner:
    """Serve ``base`` (or a new app) with every route set added, until the runner is
    cleaned up."""
    app = base if base is not None else web.Application()
    for add_routes in routes:
        add_routes(app)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
