"""The console chat: the same commands as Slack and Discord, typed on a terminal."""

from __future__ import annotations

import asyncio

from rich.console import Console

from bot.terminal import render
from commands.dispatch import ChatRequest, Dispatcher
from commands.replies import Reply

PROMPT = "shipbot> "
CHANNEL = "console"


async def say(dispatcher: Dispatcher, console: Console, user: str, text: str) -> list[Reply]:
    """Send one message and render every reply as it arrives."""
    replies = []
    async for reply in dispatcher.handle(ChatRequest("console", user, CHANNEL, text)):
        render(console, reply)
        replies.append(reply)
    return replies


async def repl(dispatcher: Dispatcher, console: Console, user: str) -> None:
    console.print(f"shipbot console as [bold]{user}[/bold]: type `help`, Ctrl-D to leave")
    while True:
        try:
            text = await asyncio.to_thread(input, PROMPT)
        except EOFError:
            console.print()
            return
        if text.strip() in {"exit", "quit"}:
            return
        if text.strip():
            await say(dispatcher, console, user, text)
