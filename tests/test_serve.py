"""`shipbot serve` as a process: Slack HTTP mode, outbox delivery, clean stop on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from bot.settings import Settings, SettingsError, load
from commands.replies import Message, encode
from core.store import Store
from tests.cli_runner import shipbot
from tests.fake_slack import FakeSlack
from tests.test_slack import SECRET, signed, slash, until

ROOT = Path(__file__).resolve().parent.parent


async def spawn_cli(
    env: dict[str, str], *args: str, stdout: int = asyncio.subprocess.DEVNULL
) -> asyncio.subprocess.Process:
    """`shipbot ARGS…` in its own process (default: serve); stderr kept for the test."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        *(args or ("serve",)),
        cwd=ROOT,
        env=env,
        stdout=stdout,
        stderr=asyncio.subprocess.PIPE,
    )


async def stop_cli(process: asyncio.subprocess.Process) -> None:
    """SIGTERM, up to 20 s to end, then SIGKILL."""
    process.send_signal(signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(process.wait(), 20)
    if process.returncode is None:
        process.kill()
        await process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_serve_slack_http_mode_and_outbox(tmp_path: Path):
    fake = await FakeSlack().start()
    home = tmp_path / "home"
    home.mkdir()
    (home / "shipbot.yml").write_text(
        "admins: [slack:UADMIN]\nnotify:\n  - {platform: slack, channel: CDEPLOYS}\n"
    )
    store = Store(home / "shipbot.db")  # queued while the bot was down: delivered on start
    store.enqueue(
        platform="slack",
        channel="CDEPLOYS",
        kind="deploys",
        payload=encode(Message("queued while shipbot was down")),
    )
    store.close()
    port = free_port()
    env = {
        **os.environ,
        "SHIPBOT_HOME": str(home),
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake.base_url,
        "SHIPBOT_HTTP_HOST": "127.0.0.1",
        "SHIPBOT_HTTP_PORT": str(port),
        "SHIPBOT_SLACK_WORKERS": "2",
    }
    proc = await spawn_cli(env)
    try:
        delivered = await until(
            lambda: [c for c in fake.of("chat.postMessage") if c.args["channel"] == "CDEPLOYS"],
            timeout=30,
        )
        assert delivered[0].args["text"] == "queued while shipbot was down"
        body = slash("/ship", "whoami", "UADMIN")
        async with aiohttp.ClientSession() as session:
            for _ in range(100):  # the HTTP listener may start a moment after the outbox
                try:
                    async with session.post(
                        f"http://127.0.0.1:{port}/slack/events",
                        data=body.encode(),
                        headers=signed(body),
                    ) as answer:
                        assert answer.status == 200
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
        posted = await until(
            lambda: [c for c in fake.of("chat.postMessage") if c.args["channel"] == "C1"]
        )
        assert posted[0].args["text"].startswith("you are slack:UADMIN")
    finally:
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        code = await asyncio.wait_for(proc.wait(), 10)
        stderr = (await proc.stderr.read()).decode()
        await fake.stop()
    assert code == 0, stderr
    assert time.monotonic() - started < 10
    assert "Traceback" not in stderr
    assert Store(home / "shipbot.db").db["outbox"].get(1)["status"] == "sent"


def test_serve_refuses_half_configured_slack(tmp_path: Path):
    # (the conftest unsets SLACK_APP_TOKEN and SLACK_SIGNING_SECRET)
    done = shipbot("serve", home=tmp_path, SLACK_BOT_TOKEN="xoxb-test")
    stderr = done.stderr
    assert done.returncode == 1
    assert "neither SLACK_APP_TOKEN (Socket Mode) nor SLACK_SIGNING_SECRET" in stderr
    assert "Traceback" not in stderr


async def test_discord_sync_publishes_the_commands(tmp_path: Path):
    from commands.registry import names as catalog_names
    from tests.fake_discord_api import APP_ID, FakeDiscord

    fake = await FakeDiscord().start()
    env = {
        **os.environ,
        "SHIPBOT_HOME": str(tmp_path),
        "DISCORD_TOKEN": "fake-token",
        "DISCORD_API_URL": fake.base,
        "DISCORD_GUILD_ID": "4242",
    }
    proc = await spawn_cli(env, "discord", "sync", stdout=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    await fake.stop()
    assert proc.returncode == 0, err.decode()
    (put,) = fake.of("PUT", f"/applications/{APP_ID}/guilds/4242/commands")
    names = [c["name"] for c in put.body]
    synced = ", ".join(f"/{name}" for name in names)
    assert out.decode().strip() == f"✅ synced {synced} to guild 4242"
    by_name = {c["name"]: c for c in put.body}
    # every catalog command, from the grammar (a two-word one under its group), and /ship
    assert set(by_name) == {name.split()[0] for name in catalog_names()} | {"ship"}
    assert len(names) == len(by_name)
    options = {o["name"]: o for o in by_name["deploy"]["options"]}
    assert options["app"]["autocomplete"] is True and options["app"]["required"] is True
    assert options["dry_run"]["type"] == 5 and not options["dry_run"].get("required")
    assert options["image"]["type"] == 3 and not options["image"].get("required")


@pytest.mark.parametrize(
    ("args", "variable", "value", "problem"),
    [
        ((), "SHIPBOT_SLACK_WORKERS", "four", "input should be a valid integer"),
        ((), "SHIPBOT_SLACK_WORKERS", "0", "input should be greater than or equal to 1"),
        ((), "SHIPBOT_HTTP_PORT", "http", "input should be a valid integer"),
        ((), "SHIPBOT_HTTP_PORT", "70000", "input should be less than or equal to 65535"),
        ((), "DISCORD_GUILD_ID", "my-guild", "input should be a valid integer"),
        (("discord", "sync"), "DISCORD_GUILD_ID", "my-guild", "input should be a valid integer"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(
    tmp_path: Path, args: tuple[str, ...], variable: str, value: str, problem: str
):
    done = shipbot(*(args or ("serve",)), home=tmp_path, DISCORD_TOKEN="t", **{variable: value})
    assert done.returncode == 1
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"❌ {variable}={value!r}: {problem}")


async def test_the_serve_process_says_a_bad_setting_in_one_line_and_exits_1(tmp_path: Path):
    """The same, from the process a supervisor starts: nothing else on stderr (no log line,
    no traceback) and exit status 1."""
    env = {**os.environ, "SHIPBOT_HOME": str(tmp_path), "SHIPBOT_HTTP_PORT": "http"}
    proc = await spawn_cli(env, stdout=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1
    assert out.decode() == ""
    (line,) = err.decode().splitlines()
    assert line.startswith("❌ SHIPBOT_HTTP_PORT='http': input should be a valid integer")


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    for name in ("SHIPBOT_HTTP_HOST", "SHIPBOT_HTTP_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-secret")
    monkeypatch.setenv("SLACK_APP_TOKEN", "")  # empty is unset
    monkeypatch.setenv("SHIPBOT_SLACK_WORKERS", "2")
    monkeypatch.setenv("DISCORD_GUILD_ID", "4242")
    monkeypatch.setenv("SHIPBOT_LOG_LEVEL", "info")
    settings = load(Settings)
    assert settings.slack_bot_token and settings.slack_bot_token.get_secret_value() == "xoxb-secret"
    assert "xoxb-secret" not in repr(settings)
    assert settings.slack_app_token is None
    assert (settings.slack_workers, settings.discord_guild_id) == (2, 4242)
    assert settings.http_host == "0.0.0.0"  # noqa: S104 (the default Slack can reach)
    assert (settings.http_port, settings.log_level) == (3000, "INFO")


def test_every_bad_setting_is_named_on_one_line(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("SHIPBOT_SLACK_WORKERS", raising=False)
    monkeypatch.setenv("SHIPBOT_HTTP_PORT", "0")
    monkeypatch.setenv("SHIPBOT_LOG_LEVEL", "loud")
    with pytest.raises(SettingsError) as raised:
        load(Settings)
    assert str(raised.value) == (
        "SHIPBOT_LOG_LEVEL='LOUD': input should be 'DEBUG', 'INFO', 'WARNING', 'ERROR' or "
        "'CRITICAL'; SHIPBOT_HTTP_PORT='0': input should be greater than or equal to 1"
    )
