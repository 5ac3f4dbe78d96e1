"""The drift watcher: at the start of ``shipbot serve`` and every ``drift.watch_seconds``,
``core.deploy.drift`` compares the store with what runs; a new difference is posted once to
the alert channels, and a recovery post closes it when it is gone.

``step`` is pure (findings + open ones → posts + what stays open); ``DriftWatch.check``
keeps the open findings in the store, written in the transaction that queues the posts, as
the certificate and backup watchers do. A round in which the server does not answer (or the
state file stays locked) changes nothing: an engine that is away is not a service that went
missing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

from core.deploy.drift import Drift
from core.errors import CoreError
from core.store import Store

log = logging.getLogger("shipbot.drift")


@dataclass(frozen=True)
class Post:
    app: str
    env: str
    text: str


def opened(drift: Drift) -> str:
    return (
        f"⚠️ drift on {drift.server}: {drift.app} ({drift.env}) {drift.kind}: {drift.detail}. "
        f"`status --drift` lists every difference"
    )


def closed(drift: Drift) -> str:
    return (
        f"✅ {drift.app} ({drift.env}) on {drift.server} matches the store again "
        f"({drift.kind} no more)"
    )


def step(found: Iterable[Drift], open_: Mapping[str, Drift]) -> tuple[list[Post], list[Drift]]:
    """Posts for new and for gone differences, and the differences open now (a standing one
    keeps its first detail, so it is not posted again when only the detail moves)."""
    now = {d.key: d for d in found}
    posts = [Post(d.app, d.env, opened(d)) for key, d in now.items() if key not in open_]
    posts += [Post(d.app, d.env, closed(d)) for key, d in open_.items() if key not in now]
    keep = [open_.get(key, d) for key, d in now.items()]
    return posts, sorted(keep, key=lambda d: d.key)


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
