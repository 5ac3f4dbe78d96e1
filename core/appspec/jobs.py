"""``release:`` in app.yml: the command a new release runs once, before traffic moves to it.

``release: [python, manage.py, migrate]`` is short for ``release: {command: [...]}``; the
long form sets ``timeout`` too. The command is argv, never a shell string: an app that wants
a shell writes ``[sh, -c, "..."]`` and says so.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from core.durations import parse_duration_ns

MAX_ARGS = 64
DEFAULT_TIMEOUT_NS = parse_duration_ns("10m")
MIN_TIMEOUT_NS = parse_duration_ns("1s")
MAX_TIMEOUT_NS = parse_duration_ns("6h")


def _argv(value: Any) -> list[str]:
    if isinstance(value, str):
        raise ValueError(
            f"expected argv (a list of strings) such as [python, manage.py, migrate], got the "
            f"string {value!r}; for a shell write [sh, -c, {value!r}]"
        )
    if not isinstance(value, list) or not value:
        raise ValueError(f"expected a non-empty list of strings (argv), got {value!r}")
    if len(value) > MAX_ARGS:
        raise ValueError(f"at most {MAX_ARGS} arguments, got {len(value)}")
    for index, part in enumerate(value):
        if isinstance(part, bool) or not isinstance(part, str | int | float):
            raise ValueError(f"argument {index} must be a string, got {part!r}")
        if "\x00" in str(part):
            raise ValueError(f"argument {index} holds a NUL character")
    if not str(value[0]).strip():
        raise ValueError("the program (argument 0) is empty")
    return [str(part) for part in value]


def _timeout(value: Any) -> int:
    ns = parse_duration_ns(value)
    if not MIN_TIMEOUT_NS <= ns <= MAX_TIMEOUT_NS:
        raise ValueError(f"must be between 1s and 6h, got {value!r}")
    return ns


class ReleaseCommand(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    command: Annotated[list[str], BeforeValidator(_argv)]
    timeout: Annotated[int, BeforeValidator(_timeout)] = Field(default=DEFAULT_TIMEOUT_NS)


def release_shorthand(value: Any) -> Any:
    """``release: [argv…]`` is short for ``release: {command: [argv…]}``."""
    return {"command": value} if isinstance(value, list | str) else value
