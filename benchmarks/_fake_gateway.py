"""A loopback Discord gateway for benchmarks/slack_ack.py: HELLO, READY after IDENTIFY (no
guilds), heartbeats acknowledged; benchmarks/_discord_serve.py runs ``shipbot serve`` with
discord.py's gateway pointed at it, so the Discord adapter connects without leaving this host.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from tests.fake_discord_api import APP_ID, BOT_ID, user
from tests.loopback import LoopbackServer

HELLO, IDENTIFY, HEARTBEAT, HEARTBEAT_ACK, DISPATCH = 10, 2, 1, 11, 0


@dataclass
class FakeGateway(LoopbackServer):
    identified: int = 0  # how many IDENTIFYs were answered with READY
    _sockets: list[web.WebSocketResponse] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/", self._socket)

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_str(json.dumps({"op": HELLO, "d": {"heartbeat_interval": 41250}}))
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                break
            op = json.loads(message.data).get("op")
            if op == HEARTBEAT:
                await ws.send_str(json.dumps({"op": HEARTBEAT_ACK, "d": None}))
            elif op == IDENTIFY:
                ready = {
                    "v": 10,
                    "user": {**user(BOT_ID, "shipbot"), "bot": True},
                    "guilds": [],
                    "session_id": "bench",
                    "resume_gateway_url": self.url,
                    "application": {"id": APP_ID, "flags": 0},
                    "shard": [0, 1],
                }
                await ws.send_str(json.dumps({"op": DISPATCH, "t": "READY", "s": 1, "d": ready}))
                self.identified += 1
        return ws

    async def stop(self) -> None:
        for ws in self._sockets:
            await ws.close()
        await super().stop()
