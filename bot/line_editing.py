"""The console's line editor on a terminal: history kept across sessions, cursor keys and
line editing (GNU readline, as Python's own REPL), and Tab completion of command words and
app names. Piped input stays plain lines."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path

HISTORY_FILE = "console_history"
HISTORY_LENGTH = 1000


def completions(text: str, before: str, commands: Iterable[str], apps: Iterable[str]) -> list[str]:
    """What Tab offers for the word ``text``, typed after ``before``: a command's first word
    at the start of the line, its second word after a group (`db` → `create`, `list`…), an
    app name anywhere else."""
    words = before.split()
    names = [command.split() for command in commands]
    if not words:
        choices = {name[0] for name in names}
    elif len(words) == 1 and any(len(n) == 2 and n[0] == words[0] for n in names):
        choices = {n[1] for n in names if len(n) == 2 and n[0] == words[0]}
    else:
        choices = set(apps)
    return sorted(choice for choice in choices if choice.startswith(text))


class LineEditor:
    """readline set up for one console session; ``close`` saves the history (mode 0600: the
    commands typed name apps and servers, never a secret's value, which is read apart)."""

    def __init__(self, home: Path, commands: Iterable[str], apps: Callable[[], list[str]]) -> None:
        import readline  # only on a terminal: importing it changes how input() reads

        self.readline = readline
        self.path = home / HISTORY_FILE
        self.commands = sorted(commands)
        self.apps = apps
        self._offered: list[str] = []
        readline.set_history_length(HISTORY_LENGTH)
        with contextlib.suppress(OSError):
            readline.read_history_file(self.path)
        readline.set_completer_delims(" \t")
        readline.set_completer(self._complete)
        binding = (
            "bind ^I rl_complete" if "libedit" in (readline.__doc__ or "") else "tab: complete"
        )
        readline.parse_and_bind(binding)

    def _complete(self, text: str, state: int) -> str | None:
        if state == 0:
            line = self.readline.get_line_buffer()
            before = line[: self.readline.get_begidx()]
            apps = self.apps() if before.strip() else []
            self._offered = [word + " " for word in completions(text, before, self.commands, apps)]
        return self._offered[state] if state < len(self._offered) else None

    def close(self) -> None:
        self.readline.set_completer(None)
        with contextlib.suppress(OSError):
            self.readline.write_history_file(self.path)
            os.chmod(self.path, 0o600)
