"""The backup watcher: silence is an alert. For every scheduled database it posts, once,

- a run that never started: the schedule's last fire time (older than the misfire grace)
  has no backup started at or after it, as when shipbot or its scheduler was down (a run
  that started and failed, database down included, has its failed row: it is no missed
  run, and was posted with why when it failed);
- no good backup within the schedule's period plus ``backups.alert_grace_seconds``, saying
  why the newest run failed or was suspect;

and a recovery post when a good backup arrives after the alert, which closes both.

``step`` is the state machine and is pure (facts + previous state + now → posts + new
state); ``BackupWatch.check`` reads the facts from the store and keeps the state there,
writing it in the transaction that queues the posts, as ``core.watch.certs`` does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from core.clock import SYSTEM, Clock
from core.config import BackupsConfig
from core.scheduler.jobs import last_fire, period
from core.store import Store
from core.store.backups import BACKUP_FAILED, BACKUP_SUSPECT

UTC = dt.UTC


@dataclass(frozen=True)
class DbFacts:
    """One scheduled database as the store shows it now."""

    database: str
    cron: str
    last_good: float | None = None  # finished_at of the newest good backup
    last_good_id: int | None = None
    last_started: float | None = None  # started_at of the newest run, good or not
    created: float | None = None  # when the database was created (managed ones)
    last_run: str | None = None  # the newest run when it was not good: "backup 7 failed: why"


@dataclass(frozen=True)
class WatchState:
    database: str
    since: float  # when the watcher first saw this schedule: older fire times are not missed
    missed: float | None = None  # the fire time alerted as never started
    stale: float | None = None  # the last good backup's time when staleness was alerted (0: none)


@dataclass(frozen=True)
class Post:
    database: str
    text: str


def when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600}h"


def step_db(
    facts: DbFacts,
    prev: WatchState | None,
    now: dt.datetime,
    misfire_grace: float,
    alert_grace: float,
) -> tuple[list[str], WatchState]:
    """One database's posts and new state."""
    name, stamp = facts.database, now.timestamp()
    state = prev or WatchState(name, since=stamp)
    posts: list[str] = []
    opened = [t for t in (state.missed, state.stale) if t is not None]
    if opened and facts.last_good is not None and facts.last_good > max(opened):
        posts.append(
            f"✅ {name} has a good backup again (backup {facts.last_good_id}, "
            f"{when(facts.last_good)}); the backup alert is closed"
        )
        state = dataclasses.replace(state, missed=None, stale=None)
    expected = last_fire(facts.cron, now - dt.timedelta(seconds=misfire_grace))
    if (
        state.missed is None
        and expected is not None
        and expected.timestamp() >= state.since
        and (facts.last_started is None or facts.last_started < expected.timestamp())
    ):
        posts.append(
            f"⏰ the scheduled backup of {name} due {when(expected.timestamp())} never "
            f"started (`{facts.cron}`): was shipbot or its scheduler down? `backup run {name}`"
        )
        state = dataclasses.replace(state, missed=expected.timestamp())
    every = period(facts.cron, now).total_seconds()
    reference = facts.last_good or max(facts.created or 0, state.since)
    if state.stale is None and stamp > reference + every + alert_grace:
        last = (
            f"the last good one is from {when(facts.last_good)}, {ago(stamp - facts.last_good)} ago"
            if facts.last_good
            else "it has never had one"
        )
        if facts.last_run:
            last += f"; the newest run, {facts.last_run}"
        posts.append(
            f"⚠️ {name} has no good backup within its schedule `{facts.cron}` plus "
            f"{ago(alert_grace)} of grace: {last}; `backup list {name}` shows why"
        )
        state = dataclasses.replace(state, stale=facts.last_good or 0.0)
    return posts, state


def step(
    facts: Iterable[DbFacts],
    previous: Mapping[str, WatchState],
    now: dt.datetime,
    misfire_grace: float,
    alert_grace: float,
) -> tuple[list[Post], dict[str, WatchState]]:
    """Every scheduled database's posts, by name, and the state to keep (a database no
    longer scheduled is forgotten)."""
    posts: list[Post] = []
    states: dict[str, WatchState] = {}
    for item in sorted(facts, key=lambda f: f.database):
        texts, states[item.database] = step_db(
            item, previous.get(item.database), now, misfire_grace, alert_grace
        )
        posts.extend(Post(item.database, text) for text in texts)
    return posts, states


def read_facts(store: Store, config: BackupsConfig) -> list[DbFacts]:
    out = []
    for name, schedule in sorted(config.schedules.items()):
        good = store.good_backups(name)
        row = store.database(name)
        newest = store.backups(name, limit=1)
        not_good = (BACKUP_FAILED, BACKUP_SUSPECT)
        bad = newest[0] if newest and newest[0]["status"] in not_good else None
        out.append(
            DbFacts(
                name,
                schedule.cron,
                good[0]["finished_at"] if good else None,
                good[0]["id"] if good else None,
                store.last_backup_started(name),
                row["created_at"] if row else None,
                f"backup {bad['id']} at {when(bad['started_at'])}, was {bad['status']}: "
                f"{(bad['error'] or '')[:200]}"
                if bad
                else None,
            )
        )
    return out


Publish = Callable[[Post], None]


class BackupWatch:
    """Checks every scheduled database and publishes what changed (see ``step``)."""

    def __init__(
        self, store: Store, config: BackupsConfig, publish: Publish, clock: Clock = SYSTEM
    ) -> None:
        self.store = store
        self.config = config
        self.publish = publish
        self.clock = clock

    def check_now(self) -> list[Post]:
        """One round, blocking: read, compare, keep, publish. Returns what was published."""
        facts = read_facts(self.store, self.config)
        previous = {row["database"]: WatchState(**row) for row in self.store.backup_watch_states()}
        posts, states = step(
            facts,
            previous,
            self.clock.now(),
            self.config.misfire_grace_seconds,
            self.config.alert_grace_seconds,
        )

        def publish_all() -> None:
            for post in posts:
                self.publish(post)

        # the state and the posts' outbox rows in one transaction: no alert lost or repeated
        self.store.save_backup_watch([dataclasses.asdict(s) for s in states.values()], publish_all)
        return posts

    async def check(self) -> list[Post]:
        return await asyncio.to_thread(self.check_now)
