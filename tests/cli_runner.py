"""``shipbot ARGS…`` run in the test's own process, through the same Typer app the entry
point loads: what a command prints and its exit status, without paying a new interpreter
and shipbot's whole import graph per call. Tests of the process itself (signals, a
terminal, the entry point's own imports) spawn the real one instead (tests/test_cli.py)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from bot.cli_app import app


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


def shipbot(*args: str, home: Path, given: str = "", **env: str) -> Ran:
    """Blocking; ``given`` is stdin (not a terminal, as when piped)."""
    runner = CliRunner()
    environ = {"SHIPBOT_HOME": str(home), "COLUMNS": "200", **env}
    done = runner.invoke(app, list(args), input=given, env=environ, catch_exceptions=False)
    return Ran(done.exit_code, done.stdout, done.stderr)


async def ashipbot(*args: str, home: Path, given: str = "", **env: str) -> Ran:
    """``shipbot`` from a test that runs in an event loop (commands start their own)."""
    return await asyncio.to_thread(shipbot, *args, home=home, given=given, **env)
