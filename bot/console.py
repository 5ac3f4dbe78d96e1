"""The console chat: the same commands as Slack and Discord, typed on a terminal."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import sys
from collections.abc import Awaitable, Callable

from bot.line_editing import LineEditor
from bot.terminal import Output
from commands.dispatch import Dispatcher, StartError
from commands.registry import load_all
from commands.replies import Log, Reply
from commands.request import ChatRequest, needs_secret
from rooms.root import Root

PROMPT = "shipbot> "
PLATFORM = CHANNEL = "console"
EXPIRY_CHECK_SECONDS = 5.0


def root_here() -> Root:
    """The control plane on this host for a command line (``shipbot``, ``shipbot ci``…),
    from its one composition root: a start error is said on stderr, and the command exits 1."""
    try:
        return Root.open()
    except StartError as exc:
        print(f"❌ {exc}", file=sys.stderr, flush=True)
        raise SystemExit(1) from exc


def open_here() -> Dispatcher:
    return root_here().dispatcher


def read_secret(prompt: str, read_line: Callable[[], str] | None = None) -> str:
    """Without echo on a terminal; from stdin when piped. One line, unless it opens a PEM or
    OpenSSH block (``-----BEGIN …``): then every line to its ``-----END …`` line (or the end
    of input), so ``ssh-key import NAME < id_ed25519`` gets the whole key."""
    if read_line is None:
        read_line = _hidden_lines(prompt) if sys.stdin.isatty() else sys.stdin.readline
    first = read_line()
    if not first.startswith("-----BEGIN "):
        return first.rstrip("\n")
    lines = [first.rstrip("\n")]
    while not lines[-1].startswith("-----END "):
        line = read_line()
        if not line:  # end of input before the block closed: the key says what is wrong
            break
        lines.append(line.rstrip("\n"))
    return "\n".join(lines) + "\n"


def _hidden_lines(prompt: str) -> Callable[[], str]:
    """Lines typed or pasted without echo; the prompt shown once."""
    prompts = iter([prompt])

    def read_line() -> str:
        return getpass.getpass(next(prompts, "")) + "\n"

    return read_line


async def say(dispatcher: Dispatcher, out: Output, user: str, text: str) -> list[Reply]:
    """Send one message and show every reply as it arrives; returns them but the log lines
    (shown, not kept: a build may print millions). An output that fails (a closed pipe)
    ends the command at once, and its audit says it was interrupted."""
    show_expired(dispatcher, out)
    prompt = needs_secret(text)
    secret = await asyncio.to_thread(read_secret, prompt) if prompt else None
    replies = []
    request = ChatRequest(PLATFORM, user, CHANNEL, text, secret)
    async with contextlib.aclosing(dispatcher.handle(request)) as stream:
        async for reply in stream:
            out.show(reply)
            if not isinstance(reply, Log):
                replies.append(reply)
    return replies


def printer(out: Output) -> Callable[[str, Reply], Awaitable[None]]:
    """Deliver a notification routed to ``platform: console`` by showing it, under the
    route's channel name (the outbox marks it sent)."""

    async def send(channel: str, reply: Reply) -> None:
        from rich.markup import escape  # with the first notification (see bot/terminal.py)

        out.note(f"── notification for console:{escape(channel)} ──")
        out.show(reply)

    return send


def show_expired(dispatcher: Dispatcher, out: Output) -> None:
    for platform, _channel, message in dispatcher.expire_due():
        if platform == PLATFORM:
            out.show(message)


async def _watch_expiry(dispatcher: Dispatcher, out: Output) -> None:
    """Expired approvals, and the notifications routed to the console, as they come."""
    send = printer(out)
    while True:
        await asyncio.sleep(EXPIRY_CHECK_SECONDS)
        show_expired(dispatcher, out)
        await dispatcher.notifier.deliver_due(PLATFORM, send)


def line_editor(dispatcher: Dispatcher) -> LineEditor | None:
    """History, cursor keys and Tab completion when a person types at a terminal."""
    if not sys.stdin.isatty():
        return None
    store = dispatcher.engine.store
    return LineEditor(store.path.parent, load_all(), lambda: [a.name for a in store.list_apps()])


async def repl(dispatcher: Dispatcher, out: Output, user: str) -> None:
    from rich.markup import escape  # as in printer

    out.note(f"shipbot console as [bold]{escape(user)}[/bold]: type `help`, Ctrl-D to leave")
    watcher = asyncio.create_task(_watch_expiry(dispatcher, out))
    editor = line_editor(dispatcher)
    try:
        while True:
            try:
                text = await asyncio.to_thread(input, PROMPT)
            except EOFError:
                out.note("")
                return
            if text.strip() in {"exit", "quit"}:
                return
            if text.strip():
                await say(dispatcher, out, user, text)
    except asyncio.CancelledError:  # SIGTERM or Ctrl-C: the shell's prompt gets its own line
        out.note("")
        raise
    finally:
        watcher.cancel()
        if editor is not None:
            editor.close()
