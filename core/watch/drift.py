"""The drift watcher: at the start of ``shipbot serve`` and every ``drift.watch_seconds``,
``core.deploy.drift`` compares the store with what runs; a new difference is posted once to
the alert channels, and a recovery post closes it when it is gone.

``step`` is pure (findings + open ones → posts + what stays open); ``DriftWatch.check``
keeps the open findings in the store, written in the transaction that queues the posts, as
the certificate and backup watchers do. A round in which no server answers (or the state
file stays locked) changes nothing: an engine that is away is not a service that went
missing. When one server of several is away, the others are compared as usual, the one away
is posted once (and once more when it answers again), and its findings stay as they were.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

from core.deploy.drift import UNREACHABLE, Drift
from core.errors import CoreError
from core.store import Store

log = logging.getLogger("shipbot.drift")


@dataclass(frozen=True)
class Post:
    app: str | None  # None: about a whole server, for every alert channel
    env: str | None
    text: str


def opened(drift: Drift) -> str:
    if drift.kind == UNREACHABLE:
        return f"⚠️ drift not checked on {drift.detail}; the other servers still are"
    return (
        f"⚠️ drift on {drift.server}: {drift.app} ({drift.env}) {drift.kind}: {drift.detail}. "
        f"`status --drift` lists every difference"
    )


def closed(drift: Drift) -> str:
    if drift.kind == UNREACHABLE:
        return f"✅ {drift.server} answers again: its drift is checked again"
    return (
        f"✅ {drift.app} ({drift.env}) on {drift.server} matches the store again "
        f"({drift.kind} no more)"
    )


def step(found: Iterable[Drift], open_: Mapping[str, Drift]) -> tuple[list[Post], list[Drift]]:
    """Posts for new and for gone differences, and the differences open now (a standing one
    keeps its first detail, so it is not posted again when only the detail moves)."""
    now = {d.key: d for d in found}
    away = {d.server for d in found if d.kind == UNREACHABLE}
    # what stood on a server that is away stands until it answers
    now |= {key: d for key, d in open_.items() if d.server in away and key not in now}
    posts = [_post(d, opened(d)) for key, d in now.items() if key not in open_]
    posts += [_post(d, closed(d)) for key, d in open_.items() if key not in now]
    keep = [open_.get(key, d) for key, d in now.items()]
    return posts, sorted(keep, key=lambda d: d.key)


def _post(drift: Drift, text: str) -> Post:
    if drift.kind == UNREACHABLE:
        return Post(None, None, text)
    return Post(drift.app, drift.env, text)


Find = Callable[[], Awaitable[list[Drift]]]
Publish = Callable[[Post], None]


class DriftWatch:
    def __init__(self, store: Store, find: Find, publish: Publish) -> None:
        self.store = store
        self.find = find
        self.publish = publish

    async def check(self) -> list[Post]:
        """One round; returns what was published (nothing when the server is away)."""
        try:
            found = await self.find()
            return await asyncio.to_thread(self._keep, found)
        except CoreError as exc:  # the engine away, the state file busy: the next round
            log.warning("drift not checked: %s", exc)
            return []

    def _keep(self, found: list[Drift]) -> list[Post]:
        previous = {row["key"]: _drift(row) for row in self.store.drift_states()}
        posts, still = step(found, previous)

        def publish_all() -> None:
            for post in posts:
                self.publish(post)

        rows = [{"key": d.key, **dataclasses.asdict(d)} for d in still]
        self.store.save_drift_states(rows, publish_all)
        return posts


def _drift(row: Mapping[str, str]) -> Drift:
    return Drift(row["server"], row["app"], row["env"], row["kind"], row["detail"])
