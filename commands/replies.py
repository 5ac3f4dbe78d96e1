"""Neutral replies: what every adapter renders (terminal text, Block Kit, Discord embeds)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Message:
    text: str


@dataclass(frozen=True)
class Step:
    """Progress of a long operation."""

    text: str


@dataclass(frozen=True)
class Log:
    """One streamed log line (build output, container output)."""

    text: str


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    title: str = ""


@dataclass(frozen=True)
class Index(Table):
    """A table of named groups (help's families): column 0 heads a group, column 1 lists its
    items. Chats show it as sections (Slack) or an embed's fields (Discord), terminals as
    the table it is; ``note`` follows it."""

    note: str = ""


@dataclass(frozen=True)
class Result:
    """The end of an operation that changed something."""

    ok: bool
    title: str
    details: tuple[str, ...] = ()
    fields: dict[str, str] = field(default_factory=dict)
    log_tail: tuple[str, ...] = ()


@dataclass(frozen=True)
class ApprovalRequest:
    """A change waiting for approval; adapters show Approve / Reject buttons for ``actions``."""

    id: int
    summary: str
    requester: str
    approvers: tuple[str, ...]
    required: int
    expires_at: float
    details: tuple[str, ...] = ()

    @property
    def actions(self) -> tuple[tuple[str, str], ...]:
        """(label, the command text a click sends)."""
        return (("Approve", f"approve {self.id}"), ("Reject", f"reject {self.id}"))


USAGE = "usage"
DENIED = "denied"
FAILED = "failed"
INTERNAL = "internal"


@dataclass(frozen=True)
class Failure:
    """A command that did not run or did not succeed; ``message`` is for the person."""

    message: str
    kind: str = FAILED
    usage: str | None = None
    log_tail: tuple[str, ...] = ()


Reply = Message | Step | Log | Table | Index | Result | Failure | ApprovalRequest


def exit_code(replies: list[Reply]) -> int:
    """0 when everything succeeded, 2 for a usage error, 1 for any other failure."""
    for reply in replies:
        if isinstance(reply, Failure):
            return 2 if reply.kind == USAGE else 1
        if isinstance(reply, Result) and not reply.ok:
            return 1
    return 0


@dataclass(frozen=True)
class Followup(Result):
    """A later word on an operation whose message a chat already shows: ``anchor`` names
    that message (a Slack ts), which the adapter edits and answers in its thread; adapters
    that cannot show it as a plain ``Result``."""

    anchor: str = ""


_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (Message, Step, Log, Table, Index, Result, Failure, ApprovalRequest, Followup)
}


def encode(reply: Reply) -> str:
    """A reply as JSON, for the outbox."""
    fields = {f.name: getattr(reply, f.name) for f in dataclasses.fields(reply)}
    return json.dumps({"type": type(reply).__name__, "fields": fields}, sort_keys=True)


def decode(text: str) -> Reply:
    data = json.loads(text)
    cls = _TYPES[data["type"]]
    fields = {
        key: _tuples(value) if key in _TUPLE_FIELDS else value
        for key, value in data["fields"].items()
    }
    return cls(**fields)


_TUPLE_FIELDS = {"columns", "rows", "details", "log_tail", "approvers"}


def _tuples(value: object) -> object:
    if isinstance(value, list):
        return tuple(_tuples(item) for item in value)
    return value


def when(ts: float) -> str:
    """A time as chat replies show it (UTC, no year)."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%m-%d %H:%M:%S")


def mask(reply: Reply, masker: Callable[[str], str]) -> Reply:
    """The same reply with every secret value in its text replaced."""

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return masker(value)
        if isinstance(value, tuple):
            return tuple(clean(item) for item in value)
        if isinstance(value, dict):
            return {key: clean(item) for key, item in value.items()}
        return value

    changes = {f.name: clean(getattr(reply, f.name)) for f in dataclasses.fields(reply)}
    return dataclasses.replace(reply, **changes)
