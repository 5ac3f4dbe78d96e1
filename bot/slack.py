"""Slack adapter (slack-bolt, async): slash commands, approval buttons, threaded logs, modals.

It only translates: Slack events become ``ChatRequest``s for the dispatcher, neutral replies
become messages. Socket Mode is the default (no inbound port); HTTP mode checks signatures
through Bolt. Every listener acks first and works after, so Slack's 3 s limit always holds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.livelog import LiveLog
from bot.slack_render import (
    APPROVE_ACTION,
    REJECT_ACTION,
    code_block,
    render,
    result_blocks,
    section,
)
from commands.dispatch import ChatRequest, Dispatcher, needs_secret
from commands.replies import DENIED, USAGE, Failure, Log, Message, Reply, Result, Step

log = logging.getLogger("shipbot.slack")
PLATFORM = "slack"
SECRET_VIEW = "shipbot_secret"  # noqa: S105 (a view id, not a password)
# Commands starting their work at once; more wait, already acked, for a slot
# (benchmarks/slack_ack.py: with 4, a burst of 50 slash commands acks about as fast as bare
# Bolt; without the gate its p99 was 3.5 times bare Bolt's).
WORKERS = int(os.environ.get("SHIPBOT_SLACK_WORKERS", "4"))


def web_client(token: str, base_url: str | None = None) -> AsyncWebClient:
    """A Web API client that honours 429 Retry-After and retries dropped connections."""
    kwargs: dict[str, Any] = {"base_url": base_url} if base_url else {}
    return AsyncWebClient(
        token=token,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=5),
        ],
        **kwargs,
    )


class SlackLiveLog(LiveLog):
    """The live log as one message in a thread, and the whole log as a file."""

    def __init__(
        self,
        client: AsyncWebClient,
        channel: str,
        thread_ts: str,
        title: str,
        interval: float = 1.0,
    ) -> None:
        self.client, self.channel, self.thread_ts = client, channel, thread_ts
        self.ts: str | None = None
        super().__init__(title, interval)

    async def post(self, lines: list[str]) -> None:
        response = await self.client.chat_postMessage(
            channel=self.channel, thread_ts=self.thread_ts, text=code_block(lines)
        )
        self.ts = response["ts"]

    async def edit(self, lines: list[str]) -> None:
        await self.client.chat_update(channel=self.channel, ts=self.ts, text=code_block(lines))

    async def upload(self, filename: str, data: bytes, comment: str) -> None:
        await self.client.files_upload_v2(
            channel=self.channel,
            thread_ts=self.thread_ts,
            title=self.title,
            filename=filename,
            content=data.decode(),
            initial_comment=comment,
        )


class Conversation:
    """One command's replies rendered into a channel: a status message, its thread, a result."""

    def __init__(
        self,
        client: AsyncWebClient,
        channel: str,
        user: str,
        text: str,
        *,
        top_ts: str | None = None,
        interval: float = 1.0,
    ) -> None:
        self.client, self.channel, self.user, self.text = client, channel, user, text
        self.top_ts = top_ts
        self.interval = interval
        self.live: SlackLiveLog | None = None
        self.started = time.monotonic()
        self.own_top = False  # we posted the status message, so we must close it
        self.finished = False

    async def _top(self) -> str:
        if self.top_ts is None:
            self.own_top = True
            text = f":hourglass_flowing_sand: `{self.text}` by <@{self.user}>"
            response = await self.client.chat_postMessage(
                channel=self.channel, text=text, blocks=[section(text)]
            )
            self.top_ts = response["ts"]
        return self.top_ts

    async def _live(self) -> SlackLiveLog:
        if self.live is None:
            self.live = SlackLiveLog(
                self.client, self.channel, await self._top(), self.text, self.interval
            )
        return self.live

    async def ephemeral(self, reply: Reply) -> None:
        text, blocks = render(reply)
        await self.client.chat_postEphemeral(
            channel=self.channel, user=self.user, text=text, blocks=blocks
        )

    async def show(self, replies: AsyncIterator[Reply]) -> None:
        async for reply in replies:
            await self.one(reply)
        if self.live is not None:
            await self.live.close()
        if self.own_top and not self.finished:  # e.g. `logs`: only lines, no result
            assert self.top_ts is not None
            text = f":white_check_mark: `{self.text}`: see the thread"
            await self.client.chat_update(
                channel=self.channel, ts=self.top_ts, text=text, blocks=[section(text)]
            )

    async def one(self, reply: Reply) -> None:
        if isinstance(reply, Step | Log):
            (await self._live()).add(("→ " if isinstance(reply, Step) else "") + reply.text)
            return
        if isinstance(reply, Failure) and reply.kind in (USAGE, DENIED) and self.top_ts is None:
            await self.ephemeral(reply)
            return
        if self.live is not None:
            await self.live.close()
            self.live = None
        if isinstance(reply, Result | Failure) and self.top_ts is not None:
            if isinstance(reply, Result):
                took = f" ({time.monotonic() - self.started:.0f}s)"
                text, blocks = result_blocks(reply, took)
            else:
                text, blocks = render(reply)
            await self.client.chat_update(
                channel=self.channel, ts=self.top_ts, text=text, blocks=blocks
            )
            self.finished = True
            return
        text, blocks = render(reply)
        await self.client.chat_postMessage(
            channel=self.channel, text=text, blocks=blocks, thread_ts=self.top_ts
        )


class SlackBot:
    """The Bolt app wired to the dispatcher."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        client: AsyncWebClient,
        *,
        signing_secret: str | None = None,
        interval: float = 1.0,
    ) -> None:
        self.dispatcher = dispatcher
        self.client = client
        self.interval = interval
        # Work after the ack waits for a slot, so a burst of commands cannot starve the acks
        # of the next ones (Slack gives up after 3 s).
        self.working = asyncio.Semaphore(WORKERS)
        self.app = AsyncApp(
            client=client,
            signing_secret=signing_secret,
            request_verification_enabled=signing_secret is not None,
        )
        self.app.middleware(self._drop_retries)
        self.app.command("/deploy")(self._prefixed("deploy"))
        self.app.command("/rollback")(self._prefixed("rollback"))
        self.app.command("/ship")(self._prefixed(None))
        self.app.action(APPROVE_ACTION)(self._decide("approve"))
        self.app.action(REJECT_ACTION)(self._decide("reject"))
        self.app.view(SECRET_VIEW)(self._secret_submitted)

    @staticmethod
    async def _drop_retries(request: Any, next: Callable[[], Awaitable[Any]]) -> Any:  # noqa: A002
        # Slack retries what it thinks timed out; the first delivery already ran it.
        if request.headers.get("x-slack-retry-num"):
            return BoltResponse(status=200, body="")
        return await next()

    def request(
        self, user: str, channel: str, text: str, secret: str | None = None
    ) -> AsyncIterator[Reply]:
        return self.dispatcher.handle(ChatRequest(PLATFORM, user, channel, text, secret))

    def _prefixed(self, verb: str | None) -> Callable[..., Awaitable[None]]:
        async def listener(ack: Any, command: dict[str, Any]) -> None:
            await ack()
            args = command.get("text", "").strip()
            text = f"{verb} {args}".strip() if verb else args
            user, channel = command["user_id"], command["channel_id"]
            if needs_secret(text):
                await self.client.views_open(
                    trigger_id=command["trigger_id"], view=secret_modal(text, channel)
                )
                return
            conv = Conversation(self.client, channel, user, text, interval=self.interval)
            replies = self.request(user, channel, text)
            # the slot covers the burst of work up to the first reply; a long deploy then
            # waits on the engine without holding it
            async with self.working:
                first = await anext(replies, None)
                if first is not None:
                    await conv.one(first)
            await conv.show(replies)

        return listener

    def _decide(self, verb: str) -> Callable[..., Awaitable[None]]:
        async def listener(ack: Any, body: dict[str, Any]) -> None:
            await ack()
            user = body["user"]["id"]
            channel = body["container"]["channel_id"]
            ts = body["container"]["message_ts"]
            text = f"{verb} {body['actions'][0]['value']}"
            replies = self.request(user, channel, text)
            first = await anext(replies, None)
            conv = Conversation(self.client, channel, user, text, top_ts=ts, interval=self.interval)
            if first is None or isinstance(first, Failure | Message):
                # refused, already decided, or one approval of several: tell the clicker
                # alone and leave the buttons for the others
                await conv.ephemeral(first or Failure("nothing to do"))
                async for rest in replies:  # run the request to its end (its audit record)
                    await conv.ephemeral(rest)
                return
            done = (
                f"{':white_check_mark: Approved' if verb == 'approve' else ':no_entry: Rejected'}"
            )
            banner = f"{done} by <@{user}>: `{text}`"
            await self.client.chat_update(
                channel=channel, ts=ts, text=banner, blocks=[section(banner)]
            )
            await conv.one(first)
            await conv.show(replies)

        return listener

    async def _secret_submitted(self, ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        await ack()
        meta = json.loads(view["private_metadata"])
        value = view["state"]["values"]["secret"]["value"]["value"]
        user = body["user"]["id"]
        conv = Conversation(self.client, meta["channel"], user, meta["text"])
        async for reply in self.request(user, meta["channel"], meta["text"], secret=value):
            await conv.ephemeral(reply)

    async def deliver(self, channel: str, reply: Reply) -> None:
        """Post a neutral reply to a channel (the outbox's ``send`` for Slack)."""
        text, blocks = render(reply)
        await self.client.chat_postMessage(channel=channel, text=text, blocks=blocks)

    # running
    async def serve_socket_mode(self, app_token: str) -> None:
        handler = AsyncSocketModeHandler(self.app, app_token, web_client=self.client)
        await handler.connect_async()
        try:
            await asyncio.Event().wait()
        finally:
            await handler.close_async()

    async def serve_http(self, host: str, port: int) -> web.AppRunner:
        server = self.app.web_app(path="/slack/events")
        server.middlewares.append(_reject_unreadable)
        runner = web.AppRunner(server)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        return runner


@web.middleware
async def _reject_unreadable(request: web.Request, handler: Any) -> web.StreamResponse:
    """A body Bolt cannot parse is a 400 before anything runs (Bolt would answer 500)."""
    try:
        return await handler(request)
    except ValueError:  # json.JSONDecodeError and malformed form bodies
        log.warning("rejected an unreadable request from %s", request.remote)
        return web.json_response({"error": "unreadable request"}, status=400)


def secret_modal(text: str, channel: str) -> dict[str, Any]:
    """A form whose input never reaches the channel."""
    return {
        "type": "modal",
        "callback_id": SECRET_VIEW,
        "private_metadata": json.dumps({"text": text, "channel": channel}),
        "title": {"type": "plain_text", "text": "shipbot secret"},
        "submit": {"type": "plain_text", "text": "Store"},
        "blocks": [
            section(f"`{text}`: the value is encrypted at rest and never posted."),
            {
                "type": "input",
                "block_id": "secret",
                "label": {"type": "plain_text", "text": "Value"},
                "element": {"type": "plain_text_input", "action_id": "value"},
            },
        ],
    }
