"""The audit tells the truth: a change cut off before it said how it ended is
``interrupted`` (not ``ok``), and approval decisions carry their request's app."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from bot.console import say as console_say
from bot.terminal import PlainLines
from commands.dispatch import ChatRequest, Dispatcher
from commands.replies import DENIED, ApprovalRequest
from tests.chat import failure, result, say, table
from tests.fast_plane import dispatcher, fake_swarm

ADMIN = "console:root"
APP_YML = """\
name: shop
image: shop:1
environments:
  production:
    approval: {required: 1, approvers: [console:bob]}
  staging: {replicas: 1}
"""


class StallingHost(paramiko.ServerInterface):
    """An SSH server that lets shipbot in, then answers no command until released (then
    each fails at once): a slow host."""

    def __init__(self) -> None:
        self.commands: list[bytes] = []
        self.ran = threading.Event()
        self.released = threading.Event()
        self.answering: list[threading.Thread] = []

    def _answer(self, channel: paramiko.Channel) -> None:
        self.released.wait()
        # a command that came in as the host was torn down finds its transport closed
        with contextlib.suppress(EOFError, OSError):
            channel.send_exit_status(127)
        channel.close()

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        return paramiko.AUTH_SUCCESSFUL

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return paramiko.OPEN_SUCCEEDED

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        self.commands.append(command)
        self.ran.set()
        answer = threading.Thread(target=self._answer, args=(channel,), daemon=True)
        answer.start()
        self.answering.append(answer)
        return True


@functools.cache
def host_key() -> paramiko.RSAKey:
    """One host key for the module's hosts: making one costs ~0.1 s of CPU."""
    return paramiko.RSAKey.generate(2048)


@contextlib.contextmanager
def stalling_host() -> Iterator[tuple[int, StallingHost]]:
    """Its port and its record; on leaving, the commands waiting get their answer, so a
    bootstrap still running fails and its thread ends."""
    listener = socket.create_server(("127.0.0.1", 0))
    server = StallingHost()
    transports: list[paramiko.Transport] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            transport = paramiko.Transport(conn)
            transports.append(transport)
            transport.add_server_key(host_key())
            transport.start_server(server=server)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], server
    finally:
        server.released.set()
        for answer in server.answering:  # each has answered before its transport closes
            answer.join(5)
        # close() alone leaves the thread blocked in accept() (Linux): shutdown wakes it
        listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        thread.join(5)
        for transport in transports:  # and their sockets: an unclosed one warns later
            transport.close()


@pytest.fixture
def bot(tmp_path: Path):
    home, folder = tmp_path / "home", tmp_path / "shop"
    home.mkdir()
    folder.mkdir()
    (folder / "app.yml").write_text(APP_YML)
    bot = dispatcher(home, fake_swarm("shop:1"), [ADMIN])
    bot.engine.store.add_grant(
        user="console:bob", role="viewer", app="shop", env="*", granted_by=ADMIN
    )
    yield bot, folder
    bot.close()


@contextlib.contextmanager
def closed_pipe() -> Iterator[PlainLines]:
    """Output to a pipe whose reader has gone: `shipbot chat … | head -0`."""
    read, write = os.pipe()
    os.close(read)
    stream = os.fdopen(write, "w", buffering=1)
    try:
        yield PlainLines(stream)
    finally:
        with contextlib.suppress(BrokenPipeError):  # what was not written stays unwritten
            stream.close()


async def test_a_server_add_whose_output_closed_is_audited_interrupted(bot):
    bot, _ = bot
    assert result(await say(bot, "ssh-key create default", ADMIN)).ok
    with stalling_host() as (port, server):
        await cut_off_server_adds(bot, port, server)


async def cut_off_server_adds(bot: Dispatcher, port: int, server: StallingHost) -> None:
    text = f"server add eu-1 ssh://root@127.0.0.1:{port}"
    with closed_pipe() as out, pytest.raises(BrokenPipeError):  # the first step's line
        await console_say(bot, out, ADMIN, text)
    row = bot.engine.store.audit_log(limit=1)[0]
    assert (row["command"], row["result"]) == (text, "interrupted")
    assert "stopped being read" in row["detail"]
    assert bot.engine.store.servers() == []

    # cancelled while the host is slow to answer (SIGTERM on `shipbot chat`): eu-1's thread
    # goes on to its first command, which waits; eu-2's must be the next the host sees
    assert await asyncio.to_thread(server.ran.wait, 10)
    server.ran.clear()
    task = asyncio.ensure_future(say(bot, text.replace("eu-1", "eu-2"), ADMIN))
    assert await asyncio.to_thread(server.ran.wait, 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    row = bot.engine.store.audit_log(limit=1)[0]
    assert (row["command"], row["result"]) == (text.replace("eu-1", "eu-2"), "interrupted")
    assert bot.engine.store.servers() == []


async def test_a_finished_change_stays_ok_when_its_reader_stops_after_the_result(bot):
    bot, folder = bot
    assert result(await say(bot, f"apps add shop --path {folder}", ADMIN)).ok
    replies = bot.handle(ChatRequest("console", ADMIN, "console", "deploy shop --env staging"))
    async for reply in replies:
        if getattr(reply, "ok", False):
            break
    await replies.aclose()
    assert bot.engine.store.audit_log(limit=1)[0]["result"] == "ok"


async def test_decisions_and_denied_attempts_are_listed_under_their_app(bot):
    bot, folder = bot
    assert result(await say(bot, f"apps add shop --path {folder}", ADMIN)).ok
    asked = [r for r in await say(bot, "deploy shop", ADMIN) if isinstance(r, ApprovalRequest)]
    number = asked[0].id
    assert failure(await say(bot, f"approve {number}", "console:eve")).kind == DENIED
    assert failure(await say(bot, f"reject {number}", "console:eve")).kind == DENIED
    assert result(await say(bot, f"reject {number}", "console:bob")).ok
    listed = table(await say(bot, "audit shop", ADMIN))
    assert [(row[1], row[3], row[4]) for row in listed.rows[:3]] == [
        ("console:bob", f"reject {number}", "ok"),
        ("console:eve", f"reject {number}", DENIED),
        ("console:eve", f"approve {number}", DENIED),
    ]
    assert {r["env"] for r in bot.engine.store.audit_log("shop", limit=3)} == {"production"}
    # an id that names no request is audited about no app
    assert failure(await say(bot, "approve 999", "console:eve")).kind == DENIED
    assert bot.engine.store.audit_log(limit=1)[0]["app"] is None
