"""What `shipbot serve` holds in memory while it idles: the libraries of what runs (Slack's
HTTP mode, Discord, webhooks, the watchers, the schedules), and none of what only a command
or another mode needs, which loads with its first use (benchmarks/slack_ack.py measures the
resident memory this keeps under 80 MB).

The real entry point runs in its own process, as benchmarks/slack_ack.py runs it: Discord on
the fake REST API and a loopback gateway, the engine an unreachable socket (the watchers
still load its client to dial it). Once Discord has identified and the watchers have
dialled, SIGTERM stops it and it writes every module it had loaded.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from benchmarks._fake_gateway import FakeGateway
from bot.self_deploy import HEARTBEAT
from tests.fake_discord_api import FakeDiscord
from tests.test_cli_start import HEAVY
from tests.test_serve import free_port
from tests.waiting import until

ROOT = Path(__file__).resolve().parent.parent
# the modules loaded when it stops (a module held back is None in sys.modules: not loaded)
SCRIPT = (
    "import atexit, gc, os, sys; atexit.register(lambda: open(os.environ['MODULES_OUT'], 'w')"
    ".write('\\n'.join([f'frozen={gc.get_freeze_count()}', *(n for n, m in list("
    "sys.modules.items()) if m is not None)])));"
    " from benchmarks._discord_serve import serve; serve(*sys.argv[1:])"
)
SCHEDULES = (
    "digest: '0 8 * * *'\n"
    "backups: {s3: {endpoint: 'http://127.0.0.1:9', bucket: idle}, report: '0 9 * * 1'}\n"
)
# what serve's idle needs: the proof that the idle point was reached, with all running
RUNNING = ("slack_bolt", "slack_sdk", "aiohttp", "discord", "docker", "requests", "apscheduler")
# what it loads only on first use: the cloud and SSH libraries (as `chat whoami` does), the
# command line's Typer, rich (with the first reply shown on the console), Socket Mode's
# client, age encryption, requests' character-set detector, and the families of commands no
# schedule or watcher runs
NOT_AT_IDLE = (
    *(name for name in HEAVY if name not in RUNNING),
    "typer",
    "rich",
    "slack_sdk.socket_mode",
    "slack_bolt.adapter.socket_mode",
    "pyrage",
    "charset_normalizer",
    "chardet",
    "commands.catalog.access",
    "commands.catalog.apps",
    "commands.catalog.deploys",
    "commands.catalog.running",
    "commands.catalog.servers",
    "commands.catalog.variables",
    "commands.catalog.volumes",
    "commands.catalog.help",
    # the store is on the standard library's sqlite3: sqlite-utils and what it pulled in
    # (click, dateutil, pluggy, sqlite-fts4) are not installed for it any more
    "sqlite_utils",
    "click",
    "dateutil",
    "pluggy",
    "sqlite_fts4",
)


async def test_serve_idles_without_what_only_a_command_or_another_mode_needs(tmp_path: Path):
    (tmp_path / "shipbot.yml").write_text("admins: [slack:UIDLE]\n" + SCHEDULES)
    out = tmp_path / "modules.txt"
    api, gateway = await FakeDiscord().start(), await FakeGateway().start()
    env = {
        **os.environ,
        "SHIPBOT_HOME": str(tmp_path),
        "DOCKER_HOST": "unix:///nonexistent.sock",
        "SLACK_BOT_TOKEN": "xoxb-idle",
        "SLACK_SIGNING_SECRET": "idle-secret",
        "SLACK_API_URL": "http://127.0.0.1:9/",
        "SHIPBOT_HTTP_HOST": "127.0.0.1",
        "SHIPBOT_HTTP_PORT": str(free_port()),
        "DISCORD_TOKEN": "idle-discord-token",
        "DISCORD_API_URL": api.base,
        "SHIPBOT_WEBHOOKS": "1",
        "MODULES_OUT": str(out),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SCRIPT,
        gateway.url,
        "--interval",
        "0.5",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await until(lambda: gateway.identified or proc.returncode, 60, "Discord identified")
        heartbeat = tmp_path / HEARTBEAT

        def stamp() -> int | None:
            return heartbeat.stat().st_mtime_ns if heartbeat.exists() else None

        first = await until(stamp, 60, "a beat")
        # a housekeeping round after the first: the watchers have dialled the engine by then,
        # and what serve made while it came up is frozen (bot/heap.py); one more to be sure
        second = await until(lambda: stamp() if stamp() != first else None, 60, "a second beat")
        await until(lambda: stamp() not in (first, second), 60, "a third beat")
    finally:
        proc.terminate()
        _, stderr = await asyncio.wait_for(proc.communicate(), 60)
        await api.stop()
        await gateway.stop()
    assert gateway.identified == 1, stderr.decode()[-2000:]
    frozen, *names = out.read_text().split("\n")
    assert int(frozen.removeprefix("frozen=")) > 10_000, frozen  # the start's objects
    loaded = set(names)
    assert [name for name in RUNNING if name not in loaded] == []
    assert sorted(loaded.intersection(NOT_AT_IDLE)) == []
