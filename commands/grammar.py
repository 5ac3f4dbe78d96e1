"""Chat text to typed requests.

A command is a frozen dataclass: its fields are its arguments and options, its docstring
is its help, and ``@command`` registers it with a name, a permission and examples. The
usage line, the parser and ``help`` all come from that one definition.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import shlex
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from commands.registry import REGISTRY, lookup, named, names
from core.edge.grants import grant_pattern
from core.names import APP_NAME_RE as NAME_RE
from core.names import ENV_NAME_RE as ENV_RE
from core.names import KEY_RE, NAME_PATTERN_RE, ROLE_NAMES, USER_RE, is_ref, public_addresses

MAX_TEXT = 4000
ARGV_MARK = "--"  # what follows is argv, passed on word for word


class UsageError(Exception):
    """The text does not parse; ``usage`` is the command's usage line when one was matched."""

    def __init__(self, message: str, usage: str | None = None) -> None:
        super().__init__(message)
        self.usage = usage


def _app_name(value: str) -> str:
    if not NAME_RE.match(value):
        raise ValueError(f"{value!r} is not an app name (a-z, 0-9 and '-', starting with a letter)")
    return value


def _env_name(value: str) -> str:
    if not ENV_RE.match(value):
        raise ValueError(f"{value!r} is not an environment name (a-z, 0-9 and '-')")
    return value


def _ref(value: str) -> str:
    if not is_ref(value):
        raise ValueError(f"{value!r} is not a git ref or image tag")
    return value


def _count(value: str) -> int:
    if not value.isdigit() or len(value) > 4:
        raise ValueError(f"expected a whole number, got {value!r}")
    return int(value)


def _release(value: str) -> int:
    return _count(value.removeprefix("r"))


def _user(value: str) -> str:
    if not USER_RE.match(value):
        raise ValueError(
            f"{value!r} is not a user id: write platform:id, e.g. slack:U024BE7LH or console:alice"
        )
    return value


def _role(value: str) -> str:
    if value not in ROLE_NAMES:
        raise ValueError(f"{value!r} is not a role: use one of {', '.join(ROLE_NAMES)}")
    return value


def _pattern(value: str) -> str:
    if not NAME_PATTERN_RE.match(value):
        raise ValueError(f"{value!r} is not a name pattern (a-z, 0-9, '-', '*' and '?')")
    return value


def _key(value: str) -> str:
    if not KEY_RE.match(value):
        raise ValueError(f"{value!r} is not a variable name (letters, digits and '_')")
    return value


def _assignment(value: str) -> tuple[str, str]:
    key, eq, rest = value.partition("=")
    if not eq:
        raise ValueError(f"expected KEY=VALUE, got {value!r}")
    return _key(key), rest


def _text(value: str) -> str:
    if value.startswith("-"):
        raise ValueError(f"{value!r} looks like an option, not a value")
    return value


def _pull_number(value: str) -> int:
    if not value.isdigit() or len(value) > 9 or int(value) < 1:
        raise ValueError(f"expected a pull request number such as 7, got {value!r}")
    return int(value)


def _argv(value: str) -> tuple[str, ...]:
    """A typed option's text (a Discord field) to argv, split as a shell would quote it."""
    try:
        return tuple(shlex.split(value))
    except ValueError as exc:
        raise ValueError(f"cannot read the command: {exc} (check the quotes)") from exc


def _addresses(value: str) -> tuple[str, ...]:
    """Public IPv4/IPv6 addresses, comma-separated (``none``: no address)."""
    if value.strip().lower() == "none":
        return ()
    items = [item for item in value.replace(" ", ",").split(",") if item]
    if not items:
        raise ValueError("expected an IPv4 or IPv6 address such as 203.0.113.7")
    return tuple(public_addresses(items))


PARSERS: dict[str, Callable[[str], Any]] = {
    "app": _app_name,
    "env": _env_name,
    "ref": _ref,
    "count": _count,
    "release": _release,
    "text": _text,
    "user": _user,
    "role": _role,
    "pattern": _pattern,
    "domain": grant_pattern,
    "key": _key,
    "assignment": _assignment,
    "pull": _pull_number,
    "argv": _argv,
    "addresses": _addresses,
}
# kinds whose option may be given more than once: the values add up
REPEATABLE = frozenset({"addresses"})


def arg(kind: str, metavar: str, *, optional: bool = False) -> Any:
    """A positional argument."""
    return dataclasses.field(
        default=None if optional else dataclasses.MISSING,
        metadata={"kind": kind, "metavar": metavar, "positional": True, "optional": optional},
    )


def option(kind: str, metavar: str, default: Any = None) -> Any:
    """``--name VALUE``; the flag is the field name with dashes."""
    return dataclasses.field(
        default=default, metadata={"kind": kind, "metavar": metavar, "positional": False}
    )


def flag() -> Any:
    """``--name`` with no value."""
    return dataclasses.field(default=False, metadata={"kind": "flag", "positional": False})


def rest(metavar: str) -> Any:
    """``-- WORDS…``: every token after ``--``, as argv (a tuple), never re-parsed."""
    return dataclasses.field(
        default=(), metadata={"kind": "argv", "metavar": metavar, "positional": False}
    )


@dataclass(frozen=True)
class CommandSpec:
    name: str
    request: type
    permission: str
    examples: tuple[str, ...]
    changes_state: bool
    locks: bool  # takes the app/env lock while it runs
    approvable: bool  # may need approval in environments that ask for it
    resolves: bool  # reads app.yml at a ref: the dispatcher resolves it once, before the gate

    @property
    def summary(self) -> str:
        """The docstring's first sentence, whole (its lines joined)."""
        paragraph = " ".join(inspect.cleandoc(self.request.__doc__ or "").split("\n\n")[0].split())
        end = paragraph.find(". ")
        return paragraph if end < 0 else paragraph[: end + 1]

    @property
    def help(self) -> str:
        return inspect.cleandoc(self.request.__doc__ or "")

    @property
    def usage(self) -> str:
        parts = [self.name]
        for field in dataclasses.fields(self.request):
            meta = field.metadata
            if meta.get("positional"):
                parts.append(f"[{meta['metavar']}]" if meta["optional"] else meta["metavar"])
            elif meta.get("kind") == "flag":
                parts.append(f"[{_flag(field.name)}]")
            elif meta.get("kind") == "argv":
                parts.append(f"-- {meta['metavar']}…")
            elif meta.get("kind") in REPEATABLE:
                parts.append(f"[{_flag(field.name)} {meta['metavar']}]…")
            else:
                parts.append(f"[{_flag(field.name)} {meta['metavar']}]")
        return " ".join(parts)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def command(
    name: str,
    *,
    permission: str,
    examples: tuple[str, ...] = (),
    changes_state: bool = False,
    locks: bool = False,
    approvable: bool = False,
    resolves: bool = False,
) -> Callable[[type], type]:
    def register(cls: type) -> type:
        cls = dataclass(frozen=True)(cls)
        REGISTRY[name] = CommandSpec(
            name, cls, permission, examples, changes_state or locks, locks, approvable, resolves
        )
        cls.spec = REGISTRY[name]  # type: ignore[attr-defined]
        return cls

    return register


def spec_of(request: Any) -> CommandSpec:
    return typing.cast(CommandSpec, type(request).spec)


def tokenize(text: str) -> list[str]:
    if len(text) > MAX_TEXT:
        raise UsageError(f"message too long ({len(text)} characters, at most {MAX_TEXT})")
    try:
        return shlex.split(text.strip().removeprefix("/"))
    except ValueError as exc:
        raise UsageError(f"cannot read the command: {exc} (check the quotes)") from exc


def find(tokens: list[str]) -> tuple[CommandSpec, list[str]]:
    for length in (2, 1):
        name = " ".join(tokens[:length])
        spec = lookup(name) if len(tokens) >= length else None
        if spec is not None:
            return spec, tokens[length:]
    known = names()
    group = [n for n in known if tokens and n.startswith(tokens[0] + " ")]
    if group:
        raise UsageError(
            f"{tokens[0]} needs one of: {', '.join(sorted(n.split()[1] for n in group))}",
            " | ".join(named(n).usage for n in sorted(group)),
        )
    word = tokens[0] if tokens else ""
    raise UsageError(
        f"unknown command {word!r}{did_you_mean(word, {n.split()[0] for n in known})}: "
        "type `help` to see the commands"
    )


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def parse(text: str) -> Any:
    """Text to a request object, or ``UsageError`` naming what is wrong and the usage line."""
    tokens = tokenize(text)
    if not tokens:
        raise UsageError("empty command: type `help` to see the commands")
    spec, rest = find(tokens)
    try:
        return spec.request(**_bind(spec, rest))
    except ValueError as exc:
        raise UsageError(f"{spec.name}: {exc}", spec.usage) from exc


def _bind(spec: CommandSpec, tokens: list[str]) -> dict[str, Any]:
    fields = dataclasses.fields(spec.request)
    positional = [f for f in fields if f.metadata.get("positional")]
    options = {
        ARGV_MARK if f.metadata.get("kind") == "argv" else _flag(f.name): f
        for f in fields
        if not f.metadata.get("positional")
    }
    values: dict[str, Any] = {}
    seen_positional = 0
    items = iter(tokens)
    for token in items:
        if token == ARGV_MARK and ARGV_MARK in options:
            values[options[ARGV_MARK].name] = tuple(items)
            break
        if token.startswith("--"):
            flag_name, eq, inline = token.partition("=")
            field = options.get(flag_name)
            if field is None:
                known = ", ".join(options) or "none"
                hint = did_you_mean(flag_name, options)
                raise ValueError(f"unknown option {flag_name}{hint} (options: {known})")
            repeats = field.metadata["kind"] in REPEATABLE
            if field.name in values and not repeats:
                raise ValueError(f"{flag_name} given twice")
            if field.metadata["kind"] == "flag":
                if eq:
                    raise ValueError(f"{flag_name} takes no value")
                values[field.name] = True
                continue
            raw = inline if eq else next(items, None)
            if raw is None or (not eq and raw.startswith("--")):
                raise ValueError(f"{flag_name} needs a value ({field.metadata['metavar']})")
            parsed = PARSERS[field.metadata["kind"]](raw)
            if repeats:
                twice = set(values.get(field.name, ())).intersection(parsed)
                if twice:
                    raise ValueError(f"{flag_name} given twice with {min(twice)}")
                parsed = (*values.get(field.name, ()), *parsed)
            values[field.name] = parsed
        else:
            if seen_positional >= len(positional):
                raise ValueError(f"unexpected argument {token!r}")
            field = positional[seen_positional]
            values[field.name] = PARSERS[field.metadata["kind"]](token)
            seen_positional += 1
    for field in positional[seen_positional:]:
        if not field.metadata["optional"]:
            raise ValueError(f"missing {field.metadata['metavar']}")
    return values


def render(request: Any) -> str:
    """A request back to its canonical text: ``parse(render(r)) == r``.

    An approval stores this text and runs it when approved.
    """
    parts = [spec_of(request).name]
    argv: list[str] = []
    for field in dataclasses.fields(request):
        value = getattr(request, field.name)
        meta = field.metadata
        if meta.get("kind") == "argv":
            argv = [ARGV_MARK, *value] if value else []
            continue
        if value is None or value is False:
            continue
        if not meta.get("positional") and value == field.default:
            continue
        if meta.get("kind") in REPEATABLE:
            value = ",".join(value) or "none"
        elif isinstance(value, tuple):
            value = "=".join(value)
        if meta.get("positional"):
            parts.append(str(value))
        elif meta.get("kind") == "flag":
            parts.append(_flag(field.name))
        else:
            parts.extend([_flag(field.name), str(value)])
    parts += argv
    return shlex.join(parts[:1]) if len(parts) == 1 else parts[0] + " " + shlex.join(parts[1:])
