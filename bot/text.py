"""Plain-text pieces every chat renderer needs: tables as lines, limits kept, nothing cut."""

from __future__ import annotations

from commands.replies import Table


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
