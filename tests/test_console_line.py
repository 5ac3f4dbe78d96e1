"""The console on a terminal: Up recalls the last command, Tab completes command words and
app names, and the history outlives the session (mode 0600)."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from bot.line_editing import HISTORY_FILE, completions

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = ["deploy", "db create", "db list", "db status", "domains", "status"]


def test_completions_offer_command_words_then_group_words_then_apps():
    assert completions("d", "", COMMANDS, ["shop"]) == ["db", "deploy", "domains"]
    assert completions("", "db ", COMMANDS, ["shop"]) == ["create", "list", "status"]
    assert completions("s", "db ", COMMANDS, ["shop"]) == ["status"]
    assert completions("sh", "deploy ", COMMANDS, ["shop", "api"]) == ["shop"]
    assert completions("", "db create postgres ", COMMANDS, ["shop"]) == ["shop"]
    assert completions("x", "", COMMANDS, ["shop"]) == []


class Terminal:
    """The console in a pseudo-terminal, read until an expected text shows, with a deadline."""

    def __init__(self, home: Path) -> None:
        self.leader, follower = pty.openpty()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "console", "--as", "console:ops"],
            cwd=ROOT,
            stdin=follower,
            stdout=follower,
            stderr=follower,
            env={**os.environ, "SHIPBOT_HOME": str(home), "COLUMNS": "120", "TERM": "xterm"},
        )
        os.close(follower)
        self.seen = b""

    def type(self, keys: bytes) -> None:
        os.write(self.leader, keys)

    def wait_for(self, text: bytes, count: int = 1, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.seen.count(text) < count:
            left = deadline - time.monotonic()
            assert left > 0, f"no {text!r} x{count} in:\n{self.seen.decode(errors='replace')}"
            ready, _, _ = select.select([self.leader], [], [], min(left, 0.5))
            if ready:
                self.seen += os.read(self.leader, 65536)

    def close(self) -> int:
        """Ctrl-D at the prompt; what the console prints meanwhile is read, so it never waits
        on a full terminal."""
        self.wait_for(b"shipbot> ", self.seen.count(b"shipbot> ") or 1)
        self.type(b"\x04")
        deadline = time.monotonic() + 60
        while self.proc.poll() is None:
            assert time.monotonic() < deadline, self.seen.decode(errors="replace")[-2000:]
            ready, _, _ = select.select([self.leader], [], [], 0.2)
            if ready:
                try:
                    self.seen += os.read(self.leader, 65536)
                except OSError:  # EIO: the console closed the terminal
                    break
        code = self.proc.wait(timeout=60)
        os.close(self.leader)
        return code


def test_up_recalls_tab_completes_and_history_is_kept(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    (tmp_path / "shipbot.yml").write_text("admins: [console:ops]\n")
    term = Terminal(tmp_path)
    try:
        term.wait_for(b"shipbot> ")
        term.type(b"whoami\r")
        term.wait_for(b"you are console:ops")
        term.wait_for(b"shipbot> ", 2)
        term.type(b"\x1b[A\r")  # Up, Enter: the same command again
        term.wait_for(b"you are console:ops", 2)
        term.wait_for(b"shipbot> ", 3)
        term.type(b"who\t\r")  # Tab completes the word
        term.wait_for(b"you are console:ops", 3)
        term.wait_for(b"shipbot> ", 4)
        assert b"^[[A" not in term.seen
    finally:
        assert term.close() == 0
    history = tmp_path / HISTORY_FILE
    # a line repeated at once is kept once, as in bash's ignoredups
    assert history.read_text().splitlines()[-2:] == ["whoami", "whoami "]
    assert history.stat().st_mode & 0o777 == 0o600

    again = Terminal(tmp_path)  # a new session starts with the old history
    try:
        again.wait_for(b"shipbot> ")
        again.type(b"\x1b[A\r")
        again.wait_for(b"you are console:ops")
        again.wait_for(b"shipbot> ", 2)
    finally:
        assert again.close() == 0
