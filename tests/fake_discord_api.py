"""A local fake of the Discord REST endpoints discord.py calls, recording every call.

``discord.http.Route.BASE`` is pointed here; interaction callbacks and follow-up webhooks go
through the same base, so nothing else in the library is patched. JSON answers carry exactly
``Content-Type: application/json``, which discord.py compares literally.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.loopback import LoopbackServer

APP_ID = "900000000000000001"
BOT_ID = "900000000000000002"
GUILD_ID = "900000000000000003"
CHANNEL_ID = "900000000000000004"


@dataclass
class Call:
    method: str
    path: str
    body: dict[str, Any]
    files: dict[str, bytes]
    at: float


def user(user_id: str, name: str) -> dict[str, Any]:
    return {
        "id": user_id,
        "username": name,
        "discriminator": "0",
        "avatar": None,
        "global_name": name,
    }


def message_json(
    message_id: str,
    channel_id: str,
    body: dict[str, Any] | None = None,
    attachments: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A message as the REST API returns it (and as interactions carry it)."""
    body = body or {}
    return {
        "id": message_id,
        "channel_id": channel_id,
        "content": body.get("content") or "",
        "author": user(BOT_ID, "shipbot"),
        "timestamp": "2026-11-23T00:00:00+00:00",
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": attachments or [],
        "embeds": body.get("embeds") or [],
        "pinned": False,
        "type": 0,
        "components": body.get("components") or [],
        "flags": body.get("flags", 0),
        "application_id": APP_ID,
        "webhook_id": APP_ID,
    }


@dataclass
class FakeDiscord(LoopbackServer):
    calls: list[Call] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(910000000000000000))

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    def of(self, method: str, fragment: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and fragment in c.path]

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/api/v10/{tail:.*}", self._handle)

    async def _handle(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        body: dict[str, Any] = {}
        files: dict[str, bytes] = {}
        if request.content_type == "application/json":
            body = await request.json()
        elif request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            async for part in reader:
                data = await part.read()
                if part.name == "payload_json":
                    body = json.loads(data)
                else:
                    files[part.filename or part.name or "file"] = bytes(data)
        self.calls.append(Call(request.method, path, body, files, time.monotonic()))
        return self._json(self._answer(request.method, path, body, files))

    @staticmethod
    def _json(data: Any) -> web.Response:
        return web.Response(
            body=json.dumps(data).encode(), headers={"Content-Type": "application/json"}
        )

    def message(
        self,
        channel_id: str,
        body: dict[str, Any],
        files: dict[str, bytes],
        message_id: str | None = None,
    ) -> dict[str, Any]:
        attachments = [
            {
                "id": str(next(self._ids)),
                "filename": name,
                "size": len(data),
                "url": "http://127.0.0.1/x",
                "proxy_url": "http://127.0.0.1/x",
            }
            for name, data in files.items()
        ]
        return message_json(message_id or str(next(self._ids)), channel_id, body, attachments)

    def _answer(self, method: str, path: str, body: dict[str, Any], files: dict[str, bytes]) -> Any:
        parts = path.strip("/").split("/")
        if path == "/users/@me":
            return {**user(BOT_ID, "shipbot"), "bot": True}
        if path == "/oauth2/applications/@me":
            return {
                "id": APP_ID,
                "name": "shipbot",
                "description": "",
                "icon": None,
                "bot_public": False,
                "bot_require_code_grant": False,
                "owner": user("1", "owner"),
                "verify_key": "00",
                "flags": 0,
            }
        if parts[0] == "interactions" and parts[-1] == "callback":
            data = body.get("data") or {}
            message = self.message(CHANNEL_ID, data, files)
            return {
                "interaction": {
                    "id": parts[1],
                    "type": 2,
                    "response_message_id": message["id"],
                    "response_message_loading": False,
                    "response_message_ephemeral": False,
                },
                "resource": {"type": body.get("type"), "message": message},
            }
        if parts[0] == "webhooks":  # follow-ups and their edits
            message_id = parts[4] if len(parts) > 4 else None
            if message_id == "@original":
                message_id = str(next(self._ids))
            return self.message(CHANNEL_ID, body, files, message_id)
        if parts[0] == "channels" and parts[-1] == "threads":
            return {
                "id": str(next(self._ids)),
                "type": 11,
                "guild_id": GUILD_ID,
                "parent_id": parts[1],
                "name": body.get("name", "thread"),
                "owner_id": BOT_ID,
                "thread_metadata": {
                    "archived": False,
                    "auto_archive_duration": 1440,
                    "locked": False,
                    "archive_timestamp": "2026-11-23T00:00:00+00:00",
                },
                "message_count": 0,
                "member_count": 1,
                "rate_limit_per_user": 0,
                "flags": 0,
            }
        if parts[0] == "channels" and len(parts) > 2 and parts[2] == "messages":
            message_id = parts[3] if len(parts) > 3 else None
            return self.message(parts[1], body, files, message_id)
        if parts[0] == "channels" and len(parts) == 2:
            return {
                "id": parts[1],
                "type": 0,
                "guild_id": GUILD_ID,
                "name": "deploys",
                "position": 0,
                "permission_overwrites": [],
                "nsfw": False,
                "parent_id": None,
            }
        if parts[0] == "applications":  # command sync
            return (
                [
                    {
                        "id": str(next(self._ids)),
                        "application_id": APP_ID,
                        "version": "1",
                        "type": 1,
                        **command,
                    }
                    for command in body
                ]
                if isinstance(body, list)
                else []
            )
        return {}
