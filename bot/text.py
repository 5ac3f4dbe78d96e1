"""Plain-text pieces every chat renderer needs: tables as lines, limits kept, nothing cut."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import TypeVar

from commands.replies import Reply, Table

R = TypeVar("R", bound=Reply)

# Terminal control sequences a build or container log may carry: OSC and the other string
# controls (up to BEL or ST, or the end), CSI (7-bit and 8-bit), then any other ESC sequence
# and a lone ESC. Outside a terminal they are noise; on one they could move the cursor.
_ANSI = re.compile(
    r"(?:\x1b[\]PX^_]|[\x90\x98\x9d-\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|\x1b[ -/]*[0-~]?"
)


def strip_ansi(text: str) -> str:
    """``text`` without terminal escape sequences (colours, cursor moves, titles, links)."""
    return _ANSI.sub("", text)


def without_ansi(reply: Reply) -> Reply:
    """The same reply with escape sequences removed from every text it carries."""
    return each_text(reply, strip_ansi)


def each_text(reply: R, change: Callable[[str], str]) -> R:
    """The same reply with ``change`` applied to every text it carries (fields, rows,
    details, keys): how a renderer escapes what it quotes, once, for every reply kind."""
    changes = {f.name: _apply(getattr(reply, f.name), change) for f in dataclasses.fields(reply)}
    return dataclasses.replace(reply, **changes)


def _apply(value: object, change: Callable[[str], str]) -> object:
    if isinstance(value, str):
        return change(value)
    if isinstance(value, tuple):
        return tuple(_apply(item, change) for item in value)
    if isinstance(value, dict):
        return {_apply(key, change): _apply(item, change) for key, item in value.items()}
    return value


def table_lines(table: Table) -> list[str]:
    """A monospace table as lines (neither Slack nor Discord has a table element)."""
    rows = [table.columns, *table.rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(table.columns))]
    return ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]


def chunks(lines: list[str], limit: int) -> list[list[str]]:
    """Lines grouped so each group, joined by newlines, fits ``limit``; nothing is dropped
    (a line longer than the limit is split across groups)."""
    out: list[list[str]] = [[]]
    size = 0  # of the current group, newlines between its lines included
    for line in lines:
        while len(line) > limit:
            out.append([line[:limit]])
            line = line[limit:]
            size = limit
        cost = len(line) + (1 if out[-1] else 0)
        if size + cost > limit:
            out.append([])
            size, cost = 0, len(line)
        out[-1].append(line)
        size += cost
    return [group for group in out if group]


def tail(lines: list[str], limit: int) -> list[str]:
    """The last lines whose joined length fits ``limit`` (one huge line: its end)."""
    kept: list[str] = []
    budget = limit
    for line in reversed(lines):
        cost = len(line) + 1
        if cost > budget:
            if not kept:
                kept.append(line[-budget:])
            break
        kept.append(line)
        budget -= cost
    return list(reversed(kept))
