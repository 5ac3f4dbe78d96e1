"""What a command runs with, and the pieces every family of commands shares."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from commands.notify import Notifier
from commands.permissions import Policy
from commands.replies import Log, Reply, Result, Step
from core.config import ControlConfig
from core.config.parts import DEFAULT_ENV
from core.events import Event, LogLine, Outcome, Progress

if TYPE_CHECKING:
    from core.deploy.resolve import Resolved
    from core.engine import Engine


@dataclass(frozen=True)
class Context:
    engine: Engine
    user: str
    channel: str
    platform: str
    policy: Policy
    notifier: Notifier  # the dispatcher's: the one that routes every post
    secret: str | None = None  # a value given outside the channel (prompt, modal)
    approved_by: str | None = None
    resolved: Resolved | None = None  # what a deploy deploys, resolved once by the dispatcher
    config: ControlConfig = field(default_factory=ControlConfig)  # shipbot.yml

    def publisher(self) -> Notifier:
        """The dispatcher's notifier: commands post through it, never through one of their own."""
        return self.notifier


def env_of(request: Any) -> str:
    return getattr(request, "env", None) or DEFAULT_ENV


async def relay(events: AsyncIterator[Event]) -> AsyncIterator[Reply]:
    """The engine's events as chat replies; closing this closes the operation too."""
    async with contextlib.aclosing(events) as stream:
        async for event in stream:
            if isinstance(event, Progress):
                yield Step(event.text)
            elif isinstance(event, LogLine):
                yield Log(event.text)
            elif isinstance(event, Outcome):
                yield Result(
                    event.ok,
                    event.title,
                    tuple(event.details),
                    dict(event.fields),
                    tuple(event.log_tail),
                )
