"""Where a Slack conversation's log lines go: a live message in the thread (and the whole
log as a file), or, outside the bot's channels, one message through the response URL."""

from __future__ import annotations

from collections import deque
from typing import Any, Protocol

from slack_sdk.web.async_client import AsyncWebClient

from bot.livelog import LIVE_LINES, LiveLog
from bot.slack_render import SECTION_LIMIT, code_block, context, escape_lines, section
from bot.text import tail
from core.clock import SYSTEM, Clock


class ThroughUrl(Protocol):
    async def post_through_url(self, text: str, blocks: list[dict[str, Any]]) -> Any: ...


class SlackLiveLog(LiveLog):
    """The live log as one message in a thread, and the whole log as a file."""

    def __init__(
        self,
        client: AsyncWebClient,
        channel: str,
        thread_ts: str,
        title: str,
        interval: float = 1.0,
        clock: Clock = SYSTEM,
    ) -> None:
        self.client, self.channel, self.thread_ts = client, channel, thread_ts
        self.ts: str | None = None
        super().__init__(title, interval, clock)

    async def post(self, lines: list[str]) -> None:
        response = await self.client.chat_postMessage(
            channel=self.channel, thread_ts=self.thread_ts, text=code_block(escape_lines(lines))
        )
        self.ts = response["ts"]

    async def edit(self, lines: list[str]) -> None:
        await self.client.chat_update(
            channel=self.channel, ts=self.ts, text=code_block(escape_lines(lines))
        )

    async def upload(self, filename: str, data: bytes, comment: str) -> None:
        await self.client.files_upload_v2(
            channel=self.channel,
            thread_ts=self.thread_ts,
            title=self.title,
            filename=filename,
            content=data.decode(),
            initial_comment=comment,
        )


class ResponseLog:
    """Lines kept until they end, then sent as one message through the response URL."""

    def __init__(self, surface: ThroughUrl) -> None:
        self.surface = surface
        self.lines: deque[str] = deque(maxlen=LIVE_LINES)  # more would not fit the message
        self.count = 0

    def add(self, line: str) -> None:
        self.lines.append(line)
        self.count += 1

    async def close(self) -> None:
        if not self.lines:
            return
        shown = tail(escape_lines(list(self.lines)), SECTION_LIMIT - len("```\n\n```"))
        blocks = [section(code_block(shown))]
        if len(shown) < self.count:
            blocks.append(context(f"the last {len(shown)} of {self.count} lines"))
        await self.surface.post_through_url("\n".join(shown), blocks)
