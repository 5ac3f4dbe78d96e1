"""A build that prints half a million lines on the real engine: the control plane streams
them and keeps only a tail, and the failure quotes that tail."""

from __future__ import annotations

import re
import shutil
import time
import uuid
from pathlib import Path

import pytest

from commands.dispatch import ChatRequest, Dispatcher
from commands.replies import Failure, Log
from tests.chat import result, say

pytestmark = pytest.mark.docker

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "hello"
LINES = 500_000
MB = 2**20
STATUS = Path("/proc/self/status")


def _status_kb(field: str) -> int:
    return int(re.search(rf"^{field}:\s+(\d+) kB", STATUS.read_text(), re.M)[1]) * 1024


def reset_peak_rss() -> int:
    """Start this process's peak RSS over from now (Linux: clear_refs 5); the RSS now."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_kb("VmRSS")


def peak_rss() -> int:
    return _status_kb("VmHWM")


async def test_a_build_printing_500k_lines_keeps_a_bounded_tail(docker_client, tmp_path):
    name = f"t{uuid.uuid4().hex[:8]}"
    folder = tmp_path / name
    shutil.copytree(EXAMPLE, folder)
    yml = folder / "app.yml"
    yml.write_text(yml.read_text().replace("name: hello", f"name: {name}"))
    (folder / "Dockerfile").write_text(
        "FROM busybox:latest\n"
        f'RUN i=0; while [ $i -lt {LINES} ]; do echo "line $i of a long build"; '
        "i=$((i+1)); done; exit 3\n"
    )
    home = tmp_path / "home"
    home.mkdir()
    (home / "shipbot.yml").write_text("admins: [console:alice]\n")
    bot = Dispatcher.open(home)
    try:
        assert result(await say(bot, f"apps add {name} --path {folder}")).ok
        seen, last = 0, None
        base = reset_peak_rss()
        started = time.monotonic()
        request = ChatRequest("console", "console:alice", "c", f"deploy {name}")
        async for reply in bot.handle(request):
            seen += isinstance(reply, Log)
            last = reply
        growth = peak_rss() - base
        print(f"{seen} log lines in {time.monotonic() - started:.1f}s, RSS +{growth / MB:.1f} MB")
        assert seen >= LINES
        assert isinstance(last, Failure) and "returned a non-zero code: 3" in last.message
        assert f"line {LINES - 1} of a long build" in last.log_tail
        assert len(last.log_tail) == 10
        assert growth < 20 * MB, growth
        row = bot.engine.store.audit_log(name, limit=1)[0]
        assert (row["command"], row["result"]) == (f"deploy {name}", "failed")
    finally:
        bot.close()
