"""The README's console transcripts, as data a test replays: each `shipbot> COMMAND` line
and the lines the console printed after it, and how a printed line is compared with the
README's (only what truly varies between runs is written as a placeholder there)."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from bot.terminal import Screen

README = Path(__file__).resolve().parent.parent / "README.md"
PROMPT = "shipbot> "
WIDTH = 100  # the README's transcripts are a terminal this wide
# a printed line's parts that differ in every run, and the README's placeholder for each
VARIABLE = (
    (re.compile(r"\b\d\d-\d\d \d\d:\d\d:\d\d\b"), "<when>"),  # a table's time of day
    (re.compile(r"\b(\d+h)?(\d+m)?\d+(\.\d+)?m?s\b"), "<time>"),  # a duration
)
# The README's stand-ins for one or more lines of a kind whose count or content the engine
# decides: its build output (layer ids, cache hits) and a rollout's progress (how many
# tasks were up at each look)
ANY = {"│ …": "│ ", "→ …": "→ "}


@dataclass(frozen=True)
class Exchange:
    command: str  # as typed, without the README's comment
    shown: tuple[str, ...]  # the README's lines after it
    direction: str = ""  # the README's comment on it: what happened before it was typed


def transcripts(text: str | None = None) -> list[list[Exchange]]:
    """Every ```text block of the README that holds a console prompt, as its exchanges."""
    text = README.read_text() if text is None else text
    found = []
    for block in re.findall(r"```text\n(.*?)```", text, re.S):
        exchanges: list[Exchange] = []
        for line in block.splitlines():
            if line.startswith(PROMPT):
                command, _, direction = line[len(PROMPT) :].partition("  #")
                exchanges.append(Exchange(command.strip(), (), direction.strip()))
            elif exchanges:
                last = exchanges[-1]
                exchanges[-1] = Exchange(last.command, (*last.shown, line), last.direction)
        if exchanges:
            found.append(exchanges)
    return found


def terminal() -> tuple[Screen, io.StringIO]:
    """The console's terminal output, WIDTH wide, without colours (the text is the same)."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=WIDTH, color_system=None, force_terminal=False)
    return Screen(console), buffer


def normalised(printed: str, names: dict[str, str]) -> list[str]:
    """The printed lines as the README writes them: this run's names as the README's, and
    each variable part as its placeholder."""
    lines = []
    for line in printed.splitlines():
        for ours, theirs in names.items():
            line = line.replace(ours, theirs)
        for pattern, placeholder in VARIABLE:
            line = pattern.sub(placeholder, line)
        lines.append(line.rstrip())
    return lines


def matches(shown: tuple[str, ...] | list[str], printed: list[str]) -> bool:
    """``printed`` is ``shown``, where a README line in ``ANY`` stands for one or more
    printed lines of its kind."""
    if not shown:
        return not printed
    want, rest = shown[0], list(shown[1:])
    if want not in ANY:
        return bool(printed) and printed[0] == want and matches(rest, printed[1:])
    taken = 0
    while taken < len(printed) and printed[taken].startswith(ANY[want]):
        taken += 1
        if matches(rest, printed[taken:]):
            return True
    return False
