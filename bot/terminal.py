"""Render neutral replies on a terminal (the console chat and ``shipbot chat``)."""

from __future__ import annotations

import datetime as dt

from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable

from commands.replies import ApprovalRequest, Failure, Log, Message, Reply, Result, Step, Table


def render(console: Console, reply: Reply) -> None:
    if isinstance(reply, Step):
        console.print(f"[dim]→ {escape(reply.text)}[/dim]")
    elif isinstance(reply, Log):
        console.print(f"[dim]│[/dim] {escape(reply.text)}", highlight=False)
    elif isinstance(reply, Message):
        console.print(escape(reply.text), highlight=False)
    elif isinstance(reply, Table):
        table = RichTable(title=reply.title or None, title_justify="left")
        for column in reply.columns:
            table.add_column(column)
        for row in reply.rows:
            table.add_row(*(escape(cell) for cell in row))
        console.print(table)
    elif isinstance(reply, Result):
        mark = "[green]✅[/green]" if reply.ok else "[red]❌[/red]"
        console.print(f"{mark} {escape(reply.title)}")
        for detail in reply.details:
            console.print(f"   {escape(detail)}")
        if reply.fields:
            console.print(
                "   " + "  ".join(f"[bold]{k}[/bold] {escape(v)}" for k, v in reply.fields.items())
            )
        _tail(console, reply.log_tail)
    elif isinstance(reply, ApprovalRequest):
        expires = dt.datetime.fromtimestamp(reply.expires_at, dt.UTC).strftime("%H:%M:%S UTC")
        console.print(f"[yellow]⏳ approval {reply.id}[/yellow]: {escape(reply.summary)}")
        for detail in reply.details:
            console.print(f"   {escape(detail)}")
        needs = f"{reply.required} of: {', '.join(reply.approvers)}"
        console.print(f"   needs {escape(needs)}, not the requester; expires {expires}")
        buttons = "  ".join(
            f"[bold][{label}][/bold] `{escape(text)}`" for label, text in reply.actions
        )
        console.print(f"   {buttons}")
    elif isinstance(reply, Failure):
        console.print(f"[red]❌ {escape(reply.message)}[/red]", highlight=False)
        if reply.usage:
            console.print(f"   usage: {escape(reply.usage)}", highlight=False)
        _tail(console, reply.log_tail)


def _tail(console: Console, lines: tuple[str, ...]) -> None:
    if lines:
        console.print("   last log lines:")
        for line in lines:
            console.print(f"   [dim]│[/dim] {escape(line)}", highlight=False)
