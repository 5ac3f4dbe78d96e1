"""The `shipbot` command as a person runs it: exit codes and one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def shipbot(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "SHIPBOT_HOME": str(home), "COLUMNS": "200", **env},
        timeout=60,
    )


def test_version(tmp_path: Path):
    done = shipbot("--version", home=tmp_path)
    assert (done.returncode, done.stdout) == (0, "shipbot 0.1.0\n")


def test_exit_codes(tmp_path: Path):
    (tmp_path / "shipbot.yml").write_text("admins: [console:ops]\n")
    assert shipbot("chat", "help", "--as", "console:ops", home=tmp_path).returncode == 0
    usage = shipbot("chat", "deploy 'hello;rm -rf /'", "--as", "console:ops", home=tmp_path)
    assert usage.returncode == 2
    assert "is not an app name" in usage.stdout and "usage: deploy APP" in usage.stdout
    down = shipbot(
        "chat",
        "status",
        "--as",
        "console:ops",
        home=tmp_path,
        DOCKER_HOST="unix:///nonexistent/docker.sock",
    )
    assert down.returncode == 1
    assert down.stdout.strip().startswith(
        "❌ cannot reach the Docker engine at unix:///nonexistent/docker.sock: is dockerd running?"
    )
    assert "Traceback" not in down.stdout + down.stderr
    denied = shipbot("chat", "status", "--as", "console:stranger", home=tmp_path)
    assert denied.returncode == 1 and "may not view" in denied.stdout


def test_bad_control_plane_config_is_one_line(tmp_path: Path):
    (tmp_path / "shipbot.yml").write_text("admins: [alice]\n")
    done = shipbot("chat", "help", home=tmp_path)
    assert done.returncode == 1
    assert "is not a platform:id" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_fresh_install_says_how_to_become_admin(tmp_path: Path):
    done = shipbot("chat", "status", "--as", "console:me", home=tmp_path)
    assert done.returncode == 1
    assert "No admin is configured yet: add `admins: [console:me]` to shipbot.yml" in " ".join(
        done.stdout.split()
    )
