"""A local fake of Slack's Web API and Socket Mode endpoint, recording every call.

The pattern of bolt-python's own tests: the real SDK client is pointed at this server with
``base_url``; nothing in the SDK is patched. Conversations the bot is not in answer as Slack
does: a public channel ``not_in_channel`` until ``conversations.join``, a DM or a private
channel ``channel_not_found`` and cannot be joined. It also serves response URLs, each good
for five messages as Slack's are.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.loopback import LoopbackServer


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    at: float
    answer: dict[str, Any] = field(default_factory=dict)


@dataclass
class FakeSlack(LoopbackServer):
    calls: list[Call] = field(default_factory=list)
    uploads: dict[str, bytes] = field(default_factory=dict)
    # method -> list of (status, retry_after) answered before the real answer
    failures: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    acks: list[dict[str, Any]] = field(default_factory=list)
    envelopes: asyncio.Queue = field(default_factory=asyncio.Queue)
    # public channels the bot has not joined yet, and conversations it cannot join
    not_joined: set[str] = field(default_factory=set)
    closed: set[str] = field(default_factory=set)
    _ts: itertools.count = field(default_factory=lambda: itertools.count(1))
    _urls: itertools.count = field(default_factory=lambda: itertools.count(1))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def response_url(self) -> str:
        """A fresh response URL, as Slack puts in each command and click."""
        return f"http://127.0.0.1:{self.port}/respond/R{next(self._urls)}"

    def responses(self, url: str | None = None) -> list[Call]:
        """Messages posted to response URLs (to ``url`` only, if given)."""
        key = url.rsplit("/", 1)[-1] if url else None
        return [c for c in self.of("response_url") if key in (None, c.args["url_key"])]

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/api/{method}", self._api)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_post("/respond/{key}", self._respond)
        app.router.add_get("/link", self._socket)

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            args.update(await request.json())
        elif request.content_type == "application/x-www-form-urlencoded":
            args.update(await request.post())
        call = Call(method, args, time.monotonic())
        self.calls.append(call)
        pending = self.failures.get(method)
        if pending:
            status, retry_after = pending.pop(0)
            return web.json_response(
                {"ok": False, "error": "ratelimited"},
                status=status,
                headers={"Retry-After": str(retry_after)},
            )
        refusal = self._refusal(method, args)
        if refusal:
            call.answer = {"ok": False, "error": refusal}
            return web.json_response(call.answer)
        call.answer = self._answer(method, args)
        return web.json_response(call.answer)

    def _refusal(self, method: str, args: dict[str, Any]) -> str | None:
        channel = args.get("channel") or args.get("channel_id")
        if method == "conversations.join":
            if channel in self.closed:
                return "method_not_supported_for_channel_type"
            self.not_joined.discard(channel)
            return None
        if method.startswith(("chat.", "files.completeUpload")):
            if channel in self.not_joined:
                return "not_in_channel"
            if channel in self.closed:
                return "channel_not_found"
        return None

    def _answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        ts = f"1700000000.{next(self._ts):06d}"
        channel = args.get("channel") or args.get("channel_id")
        answers: dict[str, dict[str, Any]] = {
            "auth.test": {
                "url": "https://fake.test/",
                "team": "T",
                "user": "shipbot",
                "team_id": "T1",
                "user_id": "UBOT",
                "bot_id": "BBOT",
            },
            "chat.postMessage": {
                "channel": channel,
                "ts": ts,
                "message": {"text": args.get("text"), "ts": ts},
            },
            "chat.update": {"channel": channel, "ts": args.get("ts"), "text": args.get("text")},
            "chat.postEphemeral": {"message_ts": ts},
            "views.open": {"view": {"id": "V1", **(args.get("view") or {})}},
            "files.getUploadURLExternal": {
                "file_id": f"F{ts[-6:]}",
                "upload_url": f"http://127.0.0.1:{self.port}/upload/F{ts[-6:]}",
            },
            "files.completeUploadExternal": {"files": json.loads(args.get("files", "[]"))},
            "apps.connections.open": {"url": f"ws://127.0.0.1:{self.port}/link"},
            "conversations.join": {"channel": {"id": channel}},
        }
        return {"ok": True, **answers.get(method, {})}

    async def _upload(self, request: web.Request) -> web.Response:
        self.uploads[request.match_info["file_id"]] = await request.read()
        return web.Response(text="OK")

    async def _respond(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        used = len(self.responses(key))
        self.calls.append(
            Call("response_url", {**await request.json(), "url_key": key}, time.monotonic())
        )
        if used >= 5:
            return web.json_response({"ok": False, "error": "used_url"}, status=404)
        return web.json_response({"ok": True})

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(autoping=True)
        await socket.prepare(request)
        await socket.send_json({"type": "hello"})

        async def push() -> None:
            while True:
                await socket.send_json(await self.envelopes.get())

        pusher = asyncio.create_task(push())
        try:
            async for message in socket:
                if message.type == WSMsgType.TEXT:
                    self.acks.append(json.loads(message.data))
        finally:
            pusher.cancel()
        return socket
