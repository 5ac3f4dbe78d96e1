"""Accepted policy against a proposed one: each difference, and whether it widens.

Widening: what the app may reach grows (a secret, a host path, a push rule, previews, forks)
or an approval loosens (removed, fewer approvals, more approvers, a longer expiry). Anything
else that differs narrows, and applies without an admin.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.durations import format_duration
from core.policy.extract import APP_KEYS, ENV_KEYS, Policy

MAX_VALUE = 200


@dataclass(frozen=True)
class Change:
    env: str | None  # None: an app-wide key
    key: str
    before: Any
    after: Any
    widening: bool

    @property
    def where(self) -> str:
        return self.key if self.env is None else f"environments.{self.env}.{self.key}"

    def __str__(self) -> str:
        verb = "widens" if self.widening else "narrows"
        return f"{self.where}: {shown(self.before)} → {shown(self.after)} ({verb})"


def _expires(value: int) -> str:
    return format_duration(value / 1e9)


def shown(value: Any) -> str:
    """A value in a reply or the audit: names only, never longer than ``MAX_VALUE``."""
    if value is None or value == []:
        text = "none"
    elif isinstance(value, list):
        text = ", ".join(str(v) for v in value)
    elif isinstance(value, dict):
        if isinstance(value.get("expires"), int):  # an approval's, kept in nanoseconds
            value = {**value, "expires": _expires(value["expires"])}
        text = json.dumps(value, sort_keys=True)
    else:
        text = str(value)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


Compare = Callable[[str | None, str, Any, Any], list[Change]]


def compare_set(env: str | None, key: str, before: Any, after: Any) -> list[Change]:
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    out = []
    if added:
        out.append(Change(env, key, [], added, True))
    if removed:
        out.append(Change(env, key, removed, [], False))
    return out


def compare_approval(env: str | None, key: str, before: Any, after: Any) -> list[Change]:
    if before == after:
        return []
    if before is None or after is None:
        return [Change(env, key, before, after, after is None)]
    out = []
    if after["required"] != before["required"]:
        widening = after["required"] < before["required"]
        out.append(Change(env, f"{key}.required", before["required"], after["required"], widening))
    out += compare_set(env, f"{key}.approvers", before["approvers"], after["approvers"])
    if after["expires"] != before["expires"]:
        widening = after["expires"] > before["expires"]
        old, new = _expires(before["expires"]), _expires(after["expires"])
        out.append(Change(env, f"{key}.expires", old, new, widening))
    return out


# how each field of ``previews`` grows: True when a larger value, or True, widens
_PREVIEW_FIELDS = {"replicas": True, "forks": True, "https": False}


def compare_previews(env: str | None, key: str, before: Any, after: Any) -> list[Change]:
    if before == after:
        return []
    if before is None or after is None:
        return [Change(env, key, before, after, before is None)]
    out = []
    if after["domain"] != before["domain"]:  # a new host name is a new place to be reached
        out.append(Change(env, f"{key}.domain", before["domain"], after["domain"], True))
    for name, larger_widens in _PREVIEW_FIELDS.items():
        old, new = before[name], after[name]
        if old != new:
            out.append(Change(env, f"{key}.{name}", old, new, (new > old) == larger_widens))
    out += compare_set(env, f"{key}.env", before["env"], after["env"])
    return out


COMPARE: dict[str, Compare] = {
    "set": compare_set,
    "approval": compare_approval,
    "previews": compare_previews,
}


def diff(accepted: Policy, proposed: Policy, env: str | None = None) -> list[Change]:
    """Every difference from ``accepted`` to ``proposed``; with ``env``, only that
    environment's keys (what a deploy to it may reach). An environment ``proposed`` no
    longer declares cannot be deployed, so it is not compared."""
    out: list[Change] = []
    if env is None:
        for key in APP_KEYS:
            before = accepted["app"].get(key.name, key.empty)
            after = proposed["app"].get(key.name, key.empty)
            out += COMPARE[key.kind](None, key.name, before, after)
    envs = proposed["environments"] if env is None else [env]
    for name in envs:
        held = accepted["environments"].get(name, {})
        offered = proposed["environments"].get(name, {})
        for key in ENV_KEYS:
            before = held.get(key.name, key.empty)
            after = offered.get(key.name, key.empty)
            out += COMPARE[key.kind](name, key.name, before, after)
    return out


def app_wide(changes: list[Change], key: str) -> list[Change]:
    return [c for c in changes if c.env is None and c.key.split(".")[0] == key]


def widening(changes: list[Change]) -> list[Change]:
    return [c for c in changes if c.widening]
