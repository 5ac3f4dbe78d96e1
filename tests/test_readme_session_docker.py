"""The README's console session, replayed on the real engine: each command typed as the
README shows it (with the README's own direction followed, "after breaking the Dockerfile's
port"), what the console printed compared with the README's lines, so the two cannot drift.
The example app runs under a unique five-letter name (a table's widths stay the README's)."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

import pytest

from bot.console import say
from commands.dispatch import Dispatcher
from tests.chat import result
from tests.chat import say as chat
from tests.readme_session import matches, normalised, terminal, transcripts

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parent.parent
USER = "console:root"  # `./dev demo` as root


@pytest.fixture
def hello(tmp_path: Path, made_apps) -> tuple[str, Path]:
    name = f"h{secrets.token_hex(2)}"  # as long as "hello"
    folder = tmp_path / name
    shutil.copytree(ROOT / "examples" / "hello", folder)
    yml = folder / "app.yml"
    yml.write_text(yml.read_text().replace("name: hello", f"name: {name}"))
    made_apps.append(name)  # removed at the module's end even if the replay stops early
    return name, folder


def follow(direction: str, folder: Path) -> None:
    """Do what a README comment says happened before its command."""
    if "breaking the Dockerfile's port" in direction:
        dockerfile = folder / "Dockerfile"
        dockerfile.write_text(dockerfile.read_text().replace('"8080"', '"8081"'))


async def test_the_readme_session_is_what_the_console_prints(tmp_path, hello, docker_client):
    name, folder = hello
    home = tmp_path / "home"
    home.mkdir()
    (home / "shipbot.yml").write_text(f"admins: [{USER}]\n")
    bot = Dispatcher.open(home)
    names = {name: "hello"}
    readme = (ROOT / "README.md").read_text()
    # the demo's session and its clean-up (other blocks show other set-ups)
    session, cleanup = [t for t in transcripts(readme) if "hello" in t[0].command]
    replayed = []
    try:
        # what `./dev demo` does before the console opens
        assert result(await chat(bot, f"apps add {name} --path {folder}", USER)).ok
        for exchange in [*session, *cleanup]:
            follow(exchange.direction, folder)
            screen, printed = terminal()
            await say(bot, screen, USER, exchange.command.replace("hello", name))
            got = normalised(printed.getvalue(), names)
            replayed.append((exchange, got))
    finally:
        bot.close()
    # every exchange printed, so a README to fix shows all of what the console says now
    transcript = "\n".join(f"shipbot> {e.command}\n" + "\n".join(got) for e, got in replayed)
    assert all(matches(e.shown, got) for e, got in replayed), transcript
