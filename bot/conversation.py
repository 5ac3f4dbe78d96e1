"""One command's replies in a chat, written once for every platform.

A conversation decides *what* goes *where*: a status message when the command has lines to
stream, a live log under it, the outcome written over the status, refusals only to the asker.
A ``Surface`` is *how*: the few platform calls an adapter implements (bolt-python's thin
adapters; errbot's test backend drives the same logic with no chat at all).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import Protocol

from bot.text import without_ansi
from commands.replies import DENIED, USAGE, Failure, Log, Message, Reply, Result, Step


class Lines(Protocol):
    """Where a command's streamed lines go (``bot.livelog.LiveLog`` is one)."""

    def add(self, line: str) -> None: ...

    async def close(self) -> None: ...


class Surface(ABC):
    """The platform calls of one conversation, in one channel, for one person.

    The status message is the one the conversation's later edits and its thread hang on:
    posted by ``post_status``, or given to the surface (the message whose button was clicked).
    """

    @abstractmethod
    async def post_status(self, text: str, user: str) -> None:
        """Post the message saying ``user``'s command ``text`` is running."""

    @abstractmethod
    async def finish_status(self, reply: Result | Failure, took: float) -> bool:
        """Write the outcome over the status message; False when it does not fit there."""

    @abstractmethod
    async def point_to_thread(self, text: str) -> None:
        """Close a status message whose command ended with lines only (``logs``)."""

    @abstractmethod
    async def decided(self, verb: str, user: str, text: str) -> None:
        """Replace the clicked approval buttons with who decided what."""

    @abstractmethod
    async def open_log(self, title: str, interval: float) -> Lines:
        """Open the live log under the status message."""

    @abstractmethod
    async def say(self, reply: Reply) -> None:
        """Show a reply to everyone in the conversation."""

    @abstractmethod
    async def whisper(self, reply: Reply) -> None:
        """Show a reply to the person who asked or clicked, and nobody else."""


class Conversation:
    """Replies to one request, rendered through a surface."""

    def __init__(
        self,
        surface: Surface,
        text: str,
        user: str,
        *,
        interval: float = 1.0,
        has_status: bool = False,
    ) -> None:
        self.surface, self.text, self.user = surface, text, user
        self.interval = interval
        self.has_status = has_status
        self.own_status = False  # we posted the status message, so we must close it
        self.finished = False
        self.live: Lines | None = None
        self.started = time.monotonic()

    async def show(self, replies: AsyncIterator[Reply]) -> None:
        async for reply in replies:
            await self.one(reply)
        await self._close_log()
        if self.own_status and not self.finished:  # e.g. `logs`: only lines, no result
            await self.surface.point_to_thread(self.text)

    async def one(self, reply: Reply) -> None:
        reply = without_ansi(reply)  # build output's colours are noise in a chat
        if isinstance(reply, Step | Log):
            await self._line(("→ " if isinstance(reply, Step) else "") + reply.text)
            return
        if isinstance(reply, Failure) and reply.kind in (USAGE, DENIED) and not self.has_status:
            await self.surface.whisper(reply)
            return
        await self._close_log()
        if (
            isinstance(reply, Result | Failure)
            and self.has_status
            and await self.surface.finish_status(reply, time.monotonic() - self.started)
        ):
            self.finished = True
            return
        await self.surface.say(reply)

    async def _line(self, line: str) -> None:
        if self.live is None:
            if not self.has_status:
                await self.surface.post_status(self.text, self.user)
                self.has_status = self.own_status = True
            self.live = await self.surface.open_log(self.text, self.interval)
        self.live.add(line)

    async def _close_log(self) -> None:
        if self.live is not None:
            live, self.live = self.live, None
            await live.close()


async def decide(
    surface: Surface,
    verb: str,
    text: str,
    user: str,
    replies: AsyncIterator[Reply],
    *,
    interval: float = 1.0,
) -> None:
    """A click on Approve or Reject: the buttons' message becomes the run's status message."""
    first = await anext(replies, None)
    if first is None or isinstance(first, Failure | Message):
        # refused, already decided, or one approval of several: tell the clicker alone and
        # leave the buttons for the others
        await surface.whisper(without_ansi(first or Failure("nothing to do")))
        async for rest in replies:  # run the request to its end (its audit record)
            await surface.whisper(without_ansi(rest))
        return
    await surface.decided(verb, user, text)
    conversation = Conversation(surface, text, user, interval=interval, has_status=True)
    await conversation.one(first)
    await conversation.show(replies)


async def tell_privately(surface: Surface, replies: AsyncIterator[Reply]) -> None:
    """Every reply to the asker alone (a request carrying a secret value)."""
    async for reply in replies:
        await surface.whisper(without_ansi(reply))
