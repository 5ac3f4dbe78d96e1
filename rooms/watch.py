"""The watch room: failure alerts and the guard after deploys, drift, the daily digest."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from commands.replies import Message, encode
from core.config.watch import AlertsConfig, DigestConfig, DriftConfig
from core.scheduler.clocked import Every
from core.store.schema import versions
from core.store.schema import watch as schema_watch
from rooms.capability import Capability, Periodic, Running, Schedule, Watcher

if TYPE_CHECKING:
    from commands.dispatch import Dispatcher
    from core.scheduler.jobs import CronJobs

log = logging.getLogger("shipbot.serve")
SWEEP_SECONDS = 60.0  # at least: leftovers are hours old, no need to list them each check


def digest(dispatcher: Dispatcher) -> CronJobs:
    """The daily digest's job (none when shipbot.yml has no ``digest:``)."""
    from core.scheduler.jobs import CronJobs
    from core.watch.digest import Digest

    config, store = dispatcher.config.digest, dispatcher.engine.store
    clock = dispatcher.engine.plane.clock
    if config is None:
        return CronJobs([], 1, clock)

    def enqueue(platform: str, channel: str, text: str) -> int:
        payload = encode(Message(text))
        return store.enqueue(platform=platform, channel=channel, kind="digest", payload=payload)

    def mask(app: str | None, env: str | None, text: str) -> str:
        return dispatcher.masker(app, env)(text)

    job = Digest(store, config, dispatcher.config.notify, enqueue, mask=mask, clock=clock)
    return CronJobs([("digest", config.cron, job.run)], config.misfire_grace_seconds, clock)


def periodic(root: Running) -> Iterable[Periodic]:
    """A watcher per server, servers added while it runs included (failure alerts, and the
    guard's round before each); drift at start and every ``drift.watch_seconds``; helpers
    and jobs a crash left behind swept at start and every minute (or check); the digest on
    ``digest.cron``."""
    # the watch's modules load where it runs (serve), not for every command line
    from commands.watching import fleet, watched_servers
    from core.scheduler.cron import trigger
    from core.watch.drift import DriftWatch
    from core.watch.sweep import sweep_all

    yield Watcher("alerts", fleet(root.plane, root.config, root.notifier).run)
    drifts = DriftWatch(
        root.plane.store,
        root.engine.drift,
        lambda post: root.notifier.publish("alerts", post.app, post.env, Message(post.text)),
    )

    async def drift() -> None:
        for post in await drifts.check():
            log.info("drift: %s", post.text)

    yield Schedule("drift", Every(root.config.drift.watch_seconds), drift)

    async def sweep() -> None:
        servers = await asyncio.to_thread(watched_servers, root.plane)
        await sweep_all(root.plane, servers)

    every = max(root.config.alerts.check_seconds, SWEEP_SECONDS)
    yield Schedule("sweep", Every(every), sweep)
    daily = digest(root.dispatcher)
    for job_id, cron, run in daily.entries:
        yield Schedule(job_id, trigger(cron), run, grace=daily.grace)


ROOM = Capability(
    name="watch",
    sections={"drift": DriftConfig, "digest": DigestConfig, "alerts": AlertsConfig},
    tables=("alerts", "alert_cursors", "guards", "drift_watch", "digest_posts"),
    migrations=versions(schema_watch),
    periodic=periodic,
)
