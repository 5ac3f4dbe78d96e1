"""Slack adapter (slack-bolt, async): slash commands, approval buttons, threaded logs, modals.

It only translates: Slack events become ``ChatRequest``s for the dispatcher, and a
``SlackSurface`` carries out a ``bot.conversation.Conversation``'s few calls. Socket Mode is
the default (no inbound port); HTTP mode checks signatures through Bolt. Every listener acks
first and works after, so Slack's 3 s limit always holds.

Outside the bot's channels: a command's private answers always go through its response URL;
the status message and its thread join a public channel first, and where the bot cannot be
(a DM, a private channel it was not invited to) the whole conversation goes through the
response URL, lines batched, since that URL takes only a few messages.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.answering import Answering
from bot.conversation import Conversation, Lines, Surface, decide, tell_privately
from bot.slack_logs import ResponseLog, SlackLiveLog
from bot.slack_render import (
    APPROVE_ACTION,
    REJECT_ACTION,
    SECRET_VIEW,
    context,
    escape,
    render,
    result_blocks,
    secret_modal,
    section,
)
from bot.text import without_ansi
from bot.webhooks import RouteSet, start_http
from commands.dispatch import Dispatcher
from commands.replies import Failure, Followup, Reply, Result
from commands.request import ChatRequest, needs_secret
from core.clock import SYSTEM, Clock

log = logging.getLogger("shipbot.slack")
PLATFORM = "slack"
# chat.* answers in a conversation the bot is not a member of
OUT_OF_REACH = frozenset({"not_in_channel", "channel_not_found"})
INVITE = (
    "I am not in this conversation, so you get no live log or log file here: "
    "`/invite @shipbot` to a channel and run commands there to get them."
)


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


class SlackSurface(Surface):
    """One conversation's Slack calls: in a channel through the Web API, or through a
    response URL where the bot cannot be."""

    def __init__(
        self,
        client: AsyncWebClient,
        channel: str,
        user: str,
        *,
        respond: AsyncRespond | None = None,
        status_ts: str | None = None,
        whisper_in_channel: bool = False,
        clock: Clock = SYSTEM,
    ) -> None:
        self.client, self.channel, self.user = client, channel, user
        self.clock = clock  # what paces the live log's edits
        self.respond = respond
        self.status_ts = status_ts
        # a click's buttons are the bot's own message, so the clicker's private answers can
        # be ephemeral messages there; a command's go through its response URL
        self.whisper_in_channel = whisper_in_channel
        # a click's response URL replaces the clicked message; a command's only adds new ones
        self.replaces = status_ts is not None
        self.unreachable = False
        self.hinted = False

    async def _api(self, call: Callable[..., Awaitable[Any]], **kwargs: Any) -> Any | None:
        """``call`` in the channel, joining a public one first if the bot is not in it; None
        when the bot cannot be there, and then for the rest of the conversation."""
        if self.unreachable:
            return None
        try:
            return await call(channel=self.channel, **kwargs)
        except SlackApiError as exc:
            if exc.response.get("error") not in OUT_OF_REACH:
                raise
            missing = exc
        try:
            await self.client.conversations_join(channel=self.channel)
        except SlackApiError as exc:  # a DM, a private channel: only an invitation helps
            log.info("cannot join %s: %s", self.channel, exc.response.get("error"))
            if self.respond is None:
                raise missing from exc
            self.unreachable = True
            return None
        return await call(channel=self.channel, **kwargs)

    async def post_through_url(
        self,
        text: str,
        blocks: list[dict[str, Any]],
        *,
        private: bool = False,
        replace: bool = False,
    ) -> None:
        assert self.respond is not None
        if self.unreachable and not self.hinted:
            blocks = [*blocks, context(INVITE)]
            self.hinted = True
        answer = await self.respond(
            text=text,
            blocks=blocks,
            response_type="ephemeral" if private else "in_channel",
            replace_original=replace,
        )
        if answer.status_code != 200:
            log.warning("response URL answered %s: %s", answer.status_code, answer.body)

    async def _post(self, text: str, blocks: list[dict[str, Any]]) -> str | None:
        answer = await self._api(
            self.client.chat_postMessage, text=text, blocks=blocks, thread_ts=self.status_ts
        )
        if answer is None:
            await self.post_through_url(text, blocks)
            return None
        return answer["ts"]

    async def _replace_status(self, text: str, blocks: list[dict[str, Any]]) -> None:
        if self.status_ts is None or (
            await self._api(self.client.chat_update, ts=self.status_ts, text=text, blocks=blocks)
            is None
        ):
            await self.post_through_url(text, blocks, replace=self.replaces)

    async def post_status(self, text: str, user: str) -> None:
        line = f":hourglass_flowing_sand: `{escape(text)}` by <@{user}>"
        self.status_ts = await self._post(line, [section(line)])

    async def finish_status(self, reply: Result | Failure, took: float) -> bool:
        if isinstance(reply, Result):
            text, blocks = result_blocks(reply, f" ({took:.0f}s)")
        else:
            text, blocks = render(reply)
        await self._replace_status(text, blocks)
        return True

    async def point_to_thread(self, text: str) -> None:
        if not self.unreachable:  # through the URL there is no thread; the lines came as one
            line = f":white_check_mark: `{text}`: see the thread"
            await self._replace_status(line, [section(line)])

    async def decided(self, verb: str, user: str, text: str) -> None:
        done = ":white_check_mark: Approved" if verb == "approve" else ":no_entry: Rejected"
        banner = f"{done} by <@{user}>: `{escape(text)}`"
        await self._replace_status(banner, [section(banner)])

    async def open_log(self, title: str, interval: float) -> Lines:
        if self.unreachable:
            return ResponseLog(self)
        assert self.status_ts is not None
        return SlackLiveLog(self.client, self.channel, self.status_ts, title, interval, self.clock)

    async def say(self, reply: Reply) -> None:
        await self._post(*render(reply))

    async def whisper(self, reply: Reply) -> None:
        text, blocks = render(reply)
        if self.respond is not None and not self.whisper_in_channel:
            await self.post_through_url(text, blocks, private=True)
            return
        sent = await self._api(
            self.client.chat_postEphemeral, user=self.user, text=text, blocks=blocks
        )
        if sent is None:
            await self.post_through_url(text, blocks, private=True)


class SlackBot:
    """The Bolt app wired to the dispatcher."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        client: AsyncWebClient,
        *,
        signing_secret: str | None = None,
        interval: float = 1.0,
        workers: int = 4,
    ) -> None:
        self.dispatcher = dispatcher
        self.client = client
        self.interval = interval
        # Commands starting their work at once; more wait, already acked, for a slot, so a
        # burst cannot starve the acks of the next ones (Slack gives up after 3 s;
        # benchmarks/slack_ack.py: with 4, a burst of 50 acks about as fast as bare Bolt).
        self.working = asyncio.Semaphore(workers)
        # and none starts while the HTTP server is still answering requests (bot/answering.py)
        self.answering = Answering()
        self.app = AsyncApp(
            # named, or Bolt names it after its caller's file through inspect.stack(), which
            # reads every frame's whole source file into linecache for good (~0.5 MB)
            name="shipbot",
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
        self,
        user: str,
        channel: str,
        text: str,
        secret: str | None = None,
        surface: SlackSurface | None = None,
    ) -> AsyncIterator[Reply]:
        """The dispatcher's replies; ``surface`` names the message that shows them, for the
        dispatcher's anchor step (a deploy's guard edits it and answers in its thread)."""

        def shown_at() -> str | None:
            return None if surface is None or surface.unreachable else surface.status_ts

        return self.dispatcher.handle(
            ChatRequest(PLATFORM, user, channel, text, secret, shown_at=shown_at)
        )

    def _prefixed(self, verb: str | None) -> Callable[..., Awaitable[None]]:
        async def listener(ack: Any, command: dict[str, Any], respond: AsyncRespond) -> None:
            await ack()
            await self.answering.quiet()
            args = command.get("text", "").strip()
            text = f"{verb} {args}".strip() if verb else args
            user, channel = command["user_id"], command["channel_id"]
            if needs_secret(text):
                modal = secret_modal(text, channel, command.get("response_url"))
                await self.client.views_open(trigger_id=command["trigger_id"], view=modal)
                return
            surface = SlackSurface(self.client, channel, user, respond=respond)
            conv = Conversation(surface, text, user, interval=self.interval)
            replies = self.request(user, channel, text, surface=surface)
            # the slot covers the burst of work up to the first reply; a long deploy then
            # waits on the engine without holding it
            async with self.working:
                first = await anext(replies, None)
                if first is not None:
                    await conv.one(first)
            await conv.show(replies)

        return listener

    def _decide(self, verb: str) -> Callable[..., Awaitable[None]]:
        async def listener(ack: Any, body: dict[str, Any], respond: AsyncRespond) -> None:
            await ack()
            await self.answering.quiet()
            user = body["user"]["id"]
            channel = body["container"]["channel_id"]
            text = f"{verb} {body['actions'][0]['value']}"
            surface = SlackSurface(
                self.client,
                channel,
                user,
                respond=respond,
                status_ts=body["container"]["message_ts"],
                whisper_in_channel=True,
            )
            replies = self.request(user, channel, text, surface=surface)
            await decide(surface, verb, text, user, replies, interval=self.interval)

        return listener

    async def _secret_submitted(self, ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        await ack()
        await self.answering.quiet()
        meta = json.loads(view["private_metadata"])
        value = view["state"]["values"]["secret"]["value"]["value"]
        user = body["user"]["id"]
        url = meta.get("response_url")
        respond = AsyncRespond(response_url=url) if url else None
        surface = SlackSurface(self.client, meta["channel"], user, respond=respond)
        await tell_privately(surface, self.request(user, meta["channel"], meta["text"], value))

    async def deliver(self, channel: str, reply: Reply) -> None:
        """Post a neutral reply to a channel (the outbox's ``send`` for Slack)."""
        text, blocks = render(without_ansi(reply))
        if isinstance(reply, Followup) and reply.anchor:  # edit the message, tell its thread
            await self.client.chat_update(
                channel=channel, ts=reply.anchor, text=text, blocks=blocks
            )
            await self.client.chat_postMessage(
                channel=channel, thread_ts=reply.anchor, text=text, blocks=blocks
            )
            return
        await self.client.chat_postMessage(channel=channel, text=text, blocks=blocks)

    # running
    async def serve_socket_mode(self, app_token: str) -> None:
        # Socket Mode's client loads only where it runs (HTTP mode never needs it)
        from slack_bolt.adapter.socket_mode.async_handler import (  # noqa: PLC0415
            AsyncSocketModeHandler,
        )

        handler = AsyncSocketModeHandler(self.app, app_token, web_client=self.client)
        await handler.connect_async()
        try:
            await asyncio.Event().wait()
        finally:
            await handler.close_async()

    async def serve_http(
        self, host: str, port: int, routes: Iterable[RouteSet] = ()
    ) -> web.AppRunner:
        """Slack's events at /slack/events, on one server with the other ``routes``."""
        server = self.app.web_app(path="/slack/events")
        server.middlewares.extend([self.answering.middleware, _reject_unreadable])
        return await start_http(host, port, routes, server)


@web.middleware
async def _reject_unreadable(request: web.Request, handler: Any) -> web.StreamResponse:
    """A body Bolt cannot parse is a 400 before anything runs (Bolt would answer 500)."""
    try:
        return await handler(request)
    except ValueError:  # json.JSONDecodeError and malformed form bodies
        log.warning("rejected an unreadable request from %s", request.remote)
        return web.json_response({"error": "unreadable request"}, status=400)
