"""A webhook delivery's way in, before anything in it is believed: whose secret proves it
(checked on the raw bytes, before any JSON is parsed), its delivery id, whether it was
handled already, and a bounded audit of the requests turned away unauthenticated.

A replay is found by the forge's delivery id and by the digest of the signed body: the
delivery header is not signed, so a replayer could change it, never the body.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from commands.catalog.pipelines import WEBHOOK_PLATFORM
from commands.dispatch import Dispatcher
from core.pipelines.events import Event, Other, PullRequest, Push, Repository
from core.pipelines.repos import same_repository
from core.pipelines.signatures import DELIVERY_HEADER, PROOF_HEADER, verify
from core.store import App

DELIVERY_RE = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
KEEP_SECONDS = 8 * 86_400  # a week and a day: forges redeliver for a few days at most
REFUSAL_WINDOW = 60.0  # at most one audit row per forge and reason in this many seconds
# one answer for every request no app's secret proves, whatever repository it names
UNSIGNED = "refused: no valid signature: sign with the app's webhook secret (`webhook secret APP`)"


@dataclass(frozen=True)
class Answer:
    """What the endpoint tells the forge: an HTTP status and one line."""

    status: int
    text: str


def plain(text: str, limit: int = 80) -> str:
    """A name or title from a payload, as shown in a channel: printable, without the angle
    brackets and ampersands chat markup is made of (``<!channel>``), and short."""
    kept = "".join(c for c in text if c.isprintable() and c not in "<>&")[:limit]
    return kept or "?"


async def _webhook(bot: Dispatcher, app: str) -> dict[str, Any] | None:
    return await bot.engine.db.in_thread(lambda: bot.engine.store.webhook(app))


async def signers(
    bot: Dispatcher, forge: str, headers: Mapping[str, str], body: bytes
) -> list[App]:
    """The git apps whose webhook secret the delivery's proof matches (on the raw bytes)."""
    proof = headers.get(PROOF_HEADER[forge])
    if not proof:
        return []
    found = []
    for app in await bot.engine.db.in_thread(lambda: bot.engine.store.list_apps()):
        if app.source_kind != "git":
            continue
        row = await _webhook(bot, app.name)
        secret = bot.engine.vault.decrypt(row["secret"]) if row and row["secret"] else ""
        if verify(forge, secret, body, proof):
            found.append(app)
    return found


def of_repository(apps: list[App], repository: Repository) -> list[App]:
    return [app for app in apps if same_repository(app.source, repository.urls)]


def delivery_id(forge: str, headers: Mapping[str, str]) -> str | None:
    value = headers.get(DELIVERY_HEADER[forge]) or (
        headers.get("x-forgejo-delivery") if forge == "gitea" else None
    )
    return value if value and DELIVERY_RE.match(value) else None


def delivery_row(
    forge: str, delivery: str, body: bytes, event: Event, apps: list[App], now: float
) -> dict[str, object]:
    """What the store keeps of an accepted delivery: a push's commit and who pushed it."""
    push = event if isinstance(event, Push) else None
    return {
        "forge": forge,
        "delivery": delivery,
        "body_digest": hashlib.sha256(body).hexdigest(),
        "app": ",".join(app.name for app in apps),
        "commit_sha": push.commit if push else None,
        "pushed_by": push.logins if push else (),
        "received_at": now,
    }


def describe(event: Push | PullRequest | Other) -> str:
    """The delivery in a few words, as the audit's command."""
    if isinstance(event, Push):
        return f"{event.forge} push {event.branch or '(not a branch)'} {event.commit[:40]}"
    if isinstance(event, PullRequest):
        return (
            f"{event.forge} pull request #{event.number} {event.raw_action} {event.head_sha[:40]}"
        )
    return f"{event.forge} {event.kind}"


@dataclass
class Refusals:
    """The audit of requests nobody proved: one row per forge and reason in each window,
    counting the requests since the previous row, so a flood writes a few rows, not one
    per request."""

    clock: Callable[[], float]
    last: dict[tuple[str, str], float] = field(default_factory=dict)
    unwritten: dict[tuple[str, str], int] = field(default_factory=dict)

    def note(self, forge: str, reason: str) -> dict[str, str] | None:
        """Count one refusal; the audit row to write now (``store.audit``'s fields), or None
        when this window has its row already."""
        key = (forge, reason)
        count = self.unwritten.get(key, 0) + 1
        now = self.clock()
        if key in self.last and now - self.last[key] < REFUSAL_WINDOW:
            self.unwritten[key] = count
            return None
        self.last[key], self.unwritten[key] = now, 0
        return {
            "user": f"{WEBHOOK_PLATFORM}:{forge}",
            "channel": forge,
            "command": f"{forge} webhook",
            "result": "refused",
            "detail": f"{reason}: {count} request{'s' if count > 1 else ''} since the last "
            "such row",
        }
