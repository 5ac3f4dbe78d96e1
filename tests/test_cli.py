"""The `shipbot` command as a person runs it: exit codes and one-line errors. Commands run
in this process through the entry point's Typer app (tests/cli_runner.py); what needs the
process itself (a terminal, signals, a real pipe from the engine) spawns one."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.console import read_secret
from bot.terminal import PlainLines
from bot.text import strip_ansi
from commands.dispatch import Dispatcher
from commands.replies import USAGE, Failure, Log, Message, Result, Step, Table, decode
from tests.chat import logs, result, say
from tests.cli_runner import shipbot

ROOT = Path(__file__).resolve().parent.parent


def shipbot_process(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``shipbot ARGS…`` in a process of its own: what the engine's build streams into a real
    pipe. The other commands here run in this process (tests/cli_runner.py): the same Typer
    app, exit codes and output, without a new interpreter each."""
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


def test_help_speaks_to_people_and_names_where_to_start(tmp_path: Path):
    """Before: `shipbot --help` printed the module's docstring, notes for developers
    (the entry point's imports) with reStructuredText quotes."""
    ran = shipbot("--help", home=tmp_path)
    assert ran.returncode == 0
    assert "shipbot console" in ran.stdout and "``" not in ran.stdout
    assert "entry point" not in ran.stdout
    # a command's description runs on as text, not broken where its docstring's line ended
    described = shipbot("self", "deploy", "--help", home=tmp_path)
    assert "posts that it came up, and with which version" in described.stdout


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


def test_without_as_one_speaks_as_user(tmp_path: Path):
    (tmp_path / "shipbot.yml").write_text("admins: [console:ops]\n")
    done = shipbot("chat", "whoami", home=tmp_path, USER="ops")
    assert done.stdout.startswith("you are console:ops (bootstrap admin")


LONG_USER = "console:mallory-has-a-remarkably-long-user-name-indeed"


def test_piped_output_is_plain_lines_with_whole_values(tmp_path: Path):
    (tmp_path / "shipbot.yml").write_text("admins: [console:ops]\n")
    granted = shipbot("chat", f"grant {LONG_USER} viewer", "--as", "console:ops", home=tmp_path)
    assert granted.returncode == 0, granted.stdout
    done = shipbot("chat", "audit", "--as", "console:ops", home=tmp_path, COLUMNS="40")
    assert done.returncode == 0
    header, row = done.stdout.splitlines()
    assert header.split() == ["when", "who", "where", "command", "result", "detail"]
    assert row.split()[2:] == [
        "console:ops",
        "console",
        "grant",
        LONG_USER,
        "viewer",
        "ok",
        LONG_USER,
        "is",
        "viewer",
        "on",
        "*/*",
    ]
    assert header.index("who") == row.index("console:ops")  # aligned columns
    assert "\x1b" not in done.stdout


def test_escape_sequences_never_reach_a_pipe(tmp_path: Path):
    (tmp_path / "shipbot.yml").write_text("admins: [console:ops]\n")
    folder = tmp_path / "\x1b[31mred\x1b[0m-\x1b]0;title\x07dir"
    done = shipbot("chat", f"apps add x --path '{folder}'", "--as", "console:ops", home=tmp_path)
    assert done.returncode == 1
    assert f"{tmp_path}/red-dir" in done.stdout
    assert "\x1b" not in done.stdout + done.stderr and "\x07" not in done.stdout


def test_json_lines_one_reply_each_same_exit_code(tmp_path: Path):
    (tmp_path / "shipbot.yml").write_text("admins: [console:ops]\n")
    shown = shipbot("chat", "whoami", "--json", "--as", "console:ops", home=tmp_path)
    assert shown.returncode == 0
    assert [decode(line) for line in shown.stdout.splitlines()] == [
        Message("you are console:ops (bootstrap admin from shipbot.yml)"),
        Table(("role", "apps", "environments"), (("admin", "*", "*"),)),
    ]
    usage = shipbot("chat", "deploy 'a;b'", "--json", "--as", "console:ops", home=tmp_path)
    assert usage.returncode == 2
    replies = [json.loads(line) for line in usage.stdout.splitlines()]
    assert [(r["type"], r["fields"]["kind"]) for r in replies] == [("Failure", "usage")]


def test_a_terminal_still_gets_rich_tables(tmp_path: Path):
    (tmp_path / "shipbot.yml").write_text("admins: [console:ops]\n")
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "chat", "grants", "--as", "console:ops"],
        cwd=ROOT,
        stdout=follower,
        stderr=subprocess.PIPE,
        env={**os.environ, "SHIPBOT_HOME": str(tmp_path), "COLUMNS": "100"},
    )
    os.close(follower)
    out = b""
    with contextlib.suppress(OSError):  # EIO once the child closed the terminal
        while chunk := os.read(leader, 4096):
            out += chunk
    os.close(leader)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    text = out.decode()
    assert "┏" in text and "┃" in text  # a drawn table
    assert "\x1b[" in text  # styled


def test_plain_lines_show_every_kind_of_reply():
    out = io.StringIO()
    plain = PlainLines(out)
    plain.show(Step("building"))
    plain.show(Log("\x1b[91mwarning: [x] \\ something\x1b[0m"))
    plain.show(Table(("id", "value"), (("1", "a" * 120),), title="Things"))
    plain.show(Result(False, "deploy failed", ("rolled back",), {"release": "7"}, ("\x1b[1mboom",)))
    plain.show(Failure("no app named 'x'", USAGE, usage="deploy APP"))
    assert out.getvalue().splitlines() == [
        "→ building",
        "│ warning: [x] \\ something",
        "Things",
        "id  value",
        "1   " + "a" * 120,
        "❌ deploy failed",
        "   rolled back",
        "   release 7",
        "   last log lines:",
        "   │ boom",
        "❌ no app named 'x'",
        "   usage: deploy APP",
    ]


def test_strip_ansi():
    assert strip_ansi("\x1b[1;31mred\x1b[0m \x1b[?25lplain\x1b[K") == "red plain"
    assert strip_ansi("\x1b]0;a title\x07x\x1b]8;;http://127.0.0.1/\x1b\\link\x1b]8;;\x1b\\") == (
        "xlink"
    )
    assert strip_ansi("a\x1b(Bb\x1b7c\x1b") == "abc"
    assert strip_ansi("[bold] stays [/bold] \\ too") == "[bold] stays [/bold] \\ too"


def spawn(*args: str, home: Path, stdin: int = subprocess.DEVNULL) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=ROOT,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "SHIPBOT_HOME": str(home)},
    )


@contextlib.contextmanager
def silent_git_server() -> Iterator[tuple[str, socket.socket]]:
    """A git:// URL on loopback whose server accepts connections and never answers."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(60)
        yield f"git://127.0.0.1:{server.getsockname()[1]}/app.git", server


def assert_hung_up(conn: socket.socket) -> None:
    """The git child on the other end is gone (its socket closed)."""
    conn.settimeout(10)
    while conn.recv(4096):  # its request first, then the end of the stream
        pass


def stopped(proc: subprocess.Popen[str], signum: int) -> tuple[int, str]:
    """Send ``signum`` and wait for the exit, without closing stdin (that would be a Ctrl-D)."""
    proc.send_signal(signum)
    code = proc.wait(timeout=30)  # generous: a loaded machine is slow, not wrong
    assert proc.stdout and proc.stderr
    output = proc.stdout.read() + proc.stderr.read()
    assert "Traceback" not in output, output
    return code, output


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_chat_stops_on_a_signal_while_git_hangs(tmp_path: Path, signum: int, code: int):
    (tmp_path / "shipbot.yml").write_text("admins: [console:ops]\n")
    with silent_git_server() as (url, server):
        text = f"apps add app --git {url}"
        with spawn("chat", text, "--as", "console:ops", home=tmp_path) as proc:
            git, _ = server.accept()  # the clone is under way and waits for an answer
            with git:
                assert stopped(proc, signum)[0] == code
                assert_hung_up(git)


def test_console_stops_on_sigterm_while_git_hangs(tmp_path: Path):
    (tmp_path / "shipbot.yml").write_text("admins: [console:ops]\n")
    with silent_git_server() as (url, server):
        proc = spawn("console", "--as", "console:ops", home=tmp_path, stdin=subprocess.PIPE)
        with proc:
            assert proc.stdin
            proc.stdin.write(f"apps add app --git {url}\n")
            proc.stdin.flush()
            git, _ = server.accept()
            with git:
                assert stopped(proc, signal.SIGTERM)[0] == 143
                assert_hung_up(git)


def test_console_leaves_on_ctrl_c_at_the_prompt(tmp_path: Path):
    (tmp_path / "shipbot.yml").write_text("admins: [console:ops]\n")
    proc = spawn("console", "--as", "console:ops", home=tmp_path, stdin=subprocess.PIPE)
    with proc:
        assert proc.stdout
        # read raw bytes up to the prompt, so the signal comes only once input() waits
        # (a text-mode readline could hold the prompt in its buffer, or race ahead of it)
        seen = b""
        deadline = time.monotonic() + 60
        while not seen.endswith(b"shipbot> ") and time.monotonic() < deadline:
            readable, _, _ = select.select([proc.stdout], [], [], 1)
            if readable:
                chunk = os.read(proc.stdout.fileno(), 4096)
                assert chunk, f"the console ended before its prompt: {seen!r}"
                seen += chunk
        assert seen.startswith(b"shipbot console as console:ops"), seen
        assert seen.endswith(b"shipbot> "), seen
        # input() now waits in a worker thread on a stdin that stays open
        code, output = stopped(proc, signal.SIGINT)
    assert code == 130
    assert output == "\n"


async def test_build_output_reaches_a_pipe_without_escape_codes(tmp_path: Path, docker_client):
    name = f"t{uuid.uuid4().hex[:8]}"
    folder = tmp_path / name
    folder.mkdir()
    (folder / "app.yml").write_text(f"name: {name}\nbuild: .\n")
    # the engine's build stream wraps what a step prints on stderr in colour codes
    (folder / "Dockerfile").write_text("FROM busybox\nRUN echo on stderr >&2 && exit 3\n")
    home = tmp_path / "home"
    home.mkdir()
    (home / "shipbot.yml").write_text("admins: [console:ops]\n")
    dispatcher = Dispatcher.open(home)
    try:
        assert result(await say(dispatcher, f"apps add {name} --path {folder}", "console:ops")).ok
        raw = logs(await say(dispatcher, f"deploy {name}", "console:ops"))
    finally:
        dispatcher.close()
    assert any("\x1b[" in line and "on stderr" in line for line in raw)  # what is stripped

    plain = shipbot_process("chat", f"deploy {name}", "--as", "console:ops", home=home)
    assert plain.returncode == 1
    assert "│ on stderr\n" in plain.stdout and "   │ on stderr\n" in plain.stdout  # log, tail
    assert "\x1b" not in plain.stdout
    as_json = shipbot_process("chat", f"deploy {name}", "--json", "--as", "console:ops", home=home)
    assert as_json.returncode == 1
    replies = [decode(line) for line in as_json.stdout.splitlines()]
    assert Log("on stderr") in replies
    assert "\\u001b" not in as_json.stdout


def test_ssh_key_import_reads_a_whole_key_file_from_stdin(tmp_path: Path):
    """`ssh-key import NAME < id_ed25519`: an OpenSSH private key is many lines, all read."""
    (tmp_path / "shipbot.yml").write_text("admins: [console:ops]\n")
    key = tmp_path / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ops@test", "-f", str(key)],
        check=True,
        timeout=30,
    )
    assert len(key.read_text().splitlines()) > 3
    public = (tmp_path / "id_ed25519.pub").read_text().split()[1]
    done = shipbot(
        "chat", "ssh-key import ops", "--as", "console:ops", home=tmp_path, given=key.read_text()
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SSH key ops stored, encrypted" in done.stdout
    assert f"ssh-ed25519 {public}" in done.stdout
    assert key.read_text().splitlines()[1] not in done.stdout


def test_a_single_line_secret_stops_at_its_line():
    lines = io.StringIO("s3cr3t\ndeploy api\n")

    assert read_secret("value: ", lines.readline) == "s3cr3t"
    assert lines.readline() == "deploy api\n"
    block = io.StringIO("-----BEGIN X-----\nAAA\n-----END X-----\nstatus\n")
    assert read_secret("key: ", block.readline) == "-----BEGIN X-----\nAAA\n-----END X-----\n"
    assert block.readline() == "status\n"
