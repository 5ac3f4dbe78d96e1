"""What the engine reports while it works: an async stream of these, ending in an Outcome."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Progress:
    """A step the engine took or is waiting on, e.g. ``updating service hello-production``."""

    text: str


@dataclass(frozen=True)
class LogLine:
    """One line of a build or container log."""

    text: str
    source: str = "build"


@dataclass(frozen=True)
class Outcome:
    """The end of an operation: what happened, in words for the channel."""

    ok: bool
    title: str
    details: list[str] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)
    log_tail: list[str] = field(default_factory=list)


Event = Progress | LogLine | Outcome
