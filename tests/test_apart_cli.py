"""``shipbot console`` and ``shipbot serve`` with no Docker engine beside them
(``DOCKER_HOST`` pointing nowhere, shipbot.yml ``local: false``): they start, answer, and
say which server to name where a command needs one; no traceback, no warning every round."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEAD = "unix:///nonexistent/docker.sock"
APART = "admins: [console:ops]\nlocal: false\n"


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DISCORD_"))}
    return {**env, "SHIPBOT_HOME": str(home), "DOCKER_HOST": DEAD, "COLUMNS": "200"}


def test_console_apart_answers_and_names_what_to_do(tmp_path: Path):
    (tmp_path / "shipbot.yml").write_text(APART)
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "console", "--as", "console:ops"],
        cwd=ROOT,
        input="status\nstatus --drift\nserver list\nproxy status\n",
        capture_output=True,
        text=True,
        env=env_for(tmp_path),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    answers = [line.removeprefix("shipbot> ") for line in done.stdout.splitlines()[1:]]
    assert answers[:4] == [
        "nothing is deployed yet",
        "no drift: the swarm runs what shipbot deployed",
        "no servers yet (none to run on): `server add` adds one",
        "❌ this control plane has no engine of its own (shipbot.yml `local: false`): name the "
        "server to act on (known: none yet; `server add` adds one)",
    ]


def test_serve_apart_runs_its_rounds_quietly(tmp_path: Path):
    (tmp_path / "shipbot.yml").write_text(APART)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env_for(tmp_path),
    )
    with proc:
        deadline = time.monotonic() + 30
        beat = tmp_path / "serve.heartbeat"
        while not beat.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert beat.exists(), "serve never ran a round"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        assert proc.stdout
        output = proc.stdout.read()
    assert "control plane up" in output, output
    for bad in ("Traceback", "failed", "not checked", "not swept"):
        assert bad not in output, output
