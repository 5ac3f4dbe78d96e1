"""Show neutral replies from the console chat and ``shipbot chat``.

On a terminal they are drawn with rich. Anywhere else (a pipe, a file, CI) they are plain
lines with whole values and no escape sequences, or with ``--json`` one JSON object per reply.
"""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TextIO

from bot.text import table_lines, without_ansi
from commands.replies import (
    ApprovalRequest,
    Index,
    Log,
    Message,
    Reply,
    Result,
    Step,
    Table,
    encode,
)

# rich loads with the first reply shown (serve idles without it: ~1 MB resident)
if TYPE_CHECKING:  # rich's console and tables load only to draw on a terminal
    from rich.console import Console
    from rich.table import Table as RichTable


class Output(Protocol):
    def show(self, reply: Reply) -> None:
        """Show one reply as soon as it arrives."""

    def note(self, markup: str) -> None:
        """A line of the console's own (rich markup), not a reply."""


def output_for(stream: TextIO | None = None, *, json: bool = False) -> Output:
    """JSON lines when asked, rich on a terminal, plain lines anywhere else."""
    stream = stream or sys.stdout
    if json:
        return JsonLines(stream)
    if stream.isatty():
        from rich.console import Console

        return Screen(Console(file=stream))
    return PlainLines(stream)


@dataclass(frozen=True)
class Line:
    markup: str
    # rich colours numbers, paths… in our own lines, not in text we only relay
    highlight: bool = True


def layout(reply: Reply) -> list[Line | Table]:
    """What a reply looks like, line by line, whatever draws it."""
    from rich.markup import escape

    if isinstance(reply, Step):
        return [Line(f"[dim]→ {escape(reply.text)}[/dim]")]
    if isinstance(reply, Log):
        return [Line(f"[dim]│[/dim] {escape(reply.text)}", highlight=False)]
    if isinstance(reply, Message):
        return [Line(escape(reply.text), highlight=False)]
    if isinstance(reply, Index):
        return [reply, Line(escape(reply.note), highlight=False)] if reply.note else [reply]
    if isinstance(reply, Table):
        return [reply]
    if isinstance(reply, Result):
        mark = "[green]✅[/green]" if reply.ok else "[red]❌[/red]"
        lines = [Line(f"{mark} {escape(reply.title)}")]
        lines += [Line(f"   {escape(detail)}") for detail in reply.details]
        if reply.fields:
            pairs = "  ".join(f"[bold]{k}[/bold] {escape(v)}" for k, v in reply.fields.items())
            lines.append(Line(f"   {pairs}"))
        return lines + _tail(reply.log_tail)
    if isinstance(reply, ApprovalRequest):
        expires = dt.datetime.fromtimestamp(reply.expires_at, dt.UTC).strftime("%H:%M:%S UTC")
        needs = f"{reply.required} of: {', '.join(reply.approvers)}"
        buttons = "  ".join(
            f"[bold]\\[{label}][/bold] `{escape(text)}`" for label, text in reply.actions
        )
        return [
            Line(f"[yellow]⏳ approval {reply.id}[/yellow]: {escape(reply.summary)}"),
            *(Line(f"   {escape(detail)}") for detail in reply.details),
            Line(f"   needs {escape(needs)}, not the requester; expires {expires}"),
            Line(f"   {buttons}"),
        ]
    # what is left is a Failure
    lines = [Line(f"[red]❌ {escape(reply.message)}[/red]", highlight=False)]
    if reply.usage:
        lines.append(Line(f"   usage: {escape(reply.usage)}", highlight=False))
    return lines + _tail(reply.log_tail)


def _tail(lines: tuple[str, ...]) -> list[Line | Table]:
    if not lines:
        return []
    from rich.markup import escape

    return [
        Line("   last log lines:"),
        *(Line(f"   [dim]│[/dim] {escape(line)}", highlight=False) for line in lines),
    ]


@dataclass
class Screen:
    """A terminal: rich styling, tables drawn to the width (a long value folds, whole)."""

    console: Console

    def show(self, reply: Reply) -> None:
        for item in layout(without_ansi(reply)):
            if isinstance(item, Table):
                self.console.print(_rich_table(item))
            else:
                self.console.print(item.markup, highlight=item.highlight)

    def note(self, markup: str) -> None:
        self.console.print(markup)


def _rich_table(table: Table) -> RichTable:
    from rich.markup import escape
    from rich.table import Table as RichTable

    drawn = RichTable(title=table.title or None, title_justify="left")
    for column in table.columns:
        drawn.add_column(column, overflow="fold")
    for row in table.rows:
        drawn.add_row(*(escape(cell) for cell in row))
    return drawn


@dataclass
class PlainLines:
    """A pipe or a file: each line whole, tables as aligned columns, no escape sequences."""

    stream: TextIO

    def show(self, reply: Reply) -> None:
        from rich.text import Text

        lines: list[str] = []
        for item in layout(without_ansi(reply)):
            if isinstance(item, Table):
                lines += [item.title] if item.title else []
                lines += table_lines(item)
            else:
                lines.append(Text.from_markup(item.markup).plain)
        self._write(lines)

    def note(self, markup: str) -> None:
        from rich.text import Text

        self._write([Text.from_markup(markup).plain])

    def _write(self, lines: list[str]) -> None:
        # flushed per reply, so a CI log shows a deploy's progress while it runs
        self.stream.write("".join(f"{line}\n" for line in lines))
        self.stream.flush()


@dataclass
class JsonLines:
    """``--json``: one object per reply per line, as the outbox stores them."""

    stream: TextIO

    def show(self, reply: Reply) -> None:
        self.stream.write(encode(without_ansi(reply)) + "\n")
        self.stream.flush()

    def note(self, markup: str) -> None:
        """Only replies go to a JSON stream."""
