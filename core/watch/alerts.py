"""The failure watcher of one server: its Docker event stream plus periodic checks.

Events (a container's death or OOM kill, a node's change) wake a check at once and OOM kills
are noted as they come; every ``alerts.check_seconds`` a check reads the whole server anyway
(services and their failed tasks, nodes, and now and then each node's disk and memory), so a
lost event costs latency, never an alert. ``core.watch.alert_rules.step`` decides; the
alerts it keeps and the posts it queues are written in one transaction.

The stream's position (the last event's time, in ns) is kept in SQLite with what the events
noted. When the stream drops, or shipbot restarts, it is read again ``since`` that time and
events at or before it are skipped: none is handled twice, none is lost while the engine
keeps it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from core.clock import SYSTEM, Clock
from core.config import AlertsConfig
from core.errors import CoreError, EngineUnavailable
from core.names import LABEL_APP, LABEL_ENV
from core.servers.errors import ServerError
from core.store import Store
from core.swarm import EventStream, SwarmClient
from core.swarm.outages import ServerAway
from core.watch.alert_rules import OOM, Alert, Post, alert_key, alerts_from_rows, step
from core.watch.facts import engine_time, log_tail, read_facts, service_facts
from core.watch.outage import away_step

log = logging.getLogger("shipbot.alerts")
SERVICE_LABEL = "com.docker.swarm.service.name"
RECONNECT_FIRST, RECONNECT_MAX = 0.5, 30.0
MIN_CHECK_GAP = 1.0  # seconds between checks that events asked for

Publish = Callable[[Post], None]
__all__ = ["AlertWatch", "engine_time", "log_tail", "read_facts", "service_facts"]


class AlertWatch:
    """One server's watcher. ``run`` follows events and checks periodically; ``check`` is
    one round; ``absorb`` takes events (the follower's, or a test's)."""

    def __init__(
        self,
        server: str,
        client: Callable[[], Awaitable[SwarmClient]],
        store: Store,
        config: AlertsConfig,
        publish: Publish,
        *,
        clock: Clock = SYSTEM,
        before: Callable[[], Awaitable[Any]] | None = None,
        owns: Callable[[Mapping[str, Any]], bool] = lambda service: True,
        extra: Callable[[], Sequence[str]] = tuple,
        rejoin: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        self.rejoin = rejoin  # nodes back: their images (core/servers/rejoin.py), off the turn
        self.nodes_moved = asyncio.Event()  # a node's event: ``rejoin`` runs at once
        self.owns = owns  # on a swarm shared with another control plane, only ours
        self.extra = extra  # services besides the apps' (blocking: it may read the store)
        self.server = server
        self.client = client
        self.store = store
        self.config = config
        self.publish = publish
        self.clock = clock  # wall time is compared with the engine's task times
        self.before = before  # the guard's round, run first under the same turn
        self.turn = asyncio.Lock()  # one writer of this server's alerts at a time
        self.wake = asyncio.Event()
        self.handled: list[str] = []  # keys of the events handled by this process, in order
        self.drops = 0  # how many times the stream ended and was opened again
        self._stream: EventStream | None = None
        self._next_usage = 0.0
        self._measurer: asyncio.Task[None] | None = None  # ``run`` measures on its own task
        self._usage: dict[str, dict[str, float]] | None = None  # measured, not yet checked

    # the periodic check
    async def check(self) -> list[Post]:
        """One round (the guard's first, if any): read, decide, keep, publish."""
        async with self.turn:
            try:
                if self.before is not None:
                    await self.before()
                return await self._check()
            except (EngineUnavailable, ServerError) as exc:  # the server did not answer
                # a remembered outage: its failure, not the words that say since when
                await self._away(exc.outage.error if isinstance(exc, ServerAway) else str(exc))
                raise

    async def _away(self, error: str) -> None:
        """The round could not read the server: its outage alert, once per outage."""
        rows = await asyncio.to_thread(self.store.alert_states, self.server)
        posts, kept = away_step(self.server, error, alerts_from_rows(rows), self.clock.time())
        await self._keep(posts, kept)

    async def _keep(self, posts: list[Post], kept: dict[str, Alert]) -> None:
        """The server's alerts stored and their posts published, in one transaction."""

        def publish_all() -> None:
            for post in posts:
                self.publish(post)

        await asyncio.to_thread(
            self.store.save_alert_states,
            self.server,
            [dataclasses.asdict(a) for a in kept.values()],
            publish_all,
        )

    async def _check(self) -> list[Post]:
        swarm = await self.client()
        now = self.clock.time()
        if self._measurer is None and self.clock.monotonic() >= self._next_usage:
            await self.measure()
        usage, self._usage = self._usage, None
        rows = await asyncio.to_thread(self.store.alert_states, self.server)
        previous = alerts_from_rows(rows)
        guards = await asyncio.to_thread(self.store.active_guards, self.server)
        guarded = frozenset(g["service"] for g in guards)
        facts = await asyncio.to_thread(
            read_facts,
            swarm,
            self.server,
            now,
            self.config,
            guarded,
            set(previous),
            usage,
            self.owns,
            await asyncio.to_thread(self.extra),
        )
        posts, kept = step(facts, previous, now, self.config)
        await self._keep(posts, kept)
        return posts

    # disk and memory: a probe on every node, which takes seconds (``run`` keeps it off the
    # checks' turn, so a slow probe never delays the guard)
    async def measure(self) -> None:
        self._next_usage = self.clock.monotonic() + self.config.usage_seconds
        if not self.config.usage_image:
            return
        try:
            swarm = await self.client()
            self._usage = await asyncio.to_thread(swarm.node_usage, self.config.usage_image)
        except CoreError as exc:  # the alert is about the nodes, not the probe
            log.warning("%s: disk and memory not measured: %s", self.server, exc)

    async def rejoin_rounds(self) -> None:
        """``rejoin`` at once on a node's event, else every ``check_seconds``; on its own
        task, so carrying an image never delays the alerts."""
        assert self.rejoin is not None
        while True:
            self.nodes_moved.clear()
            try:
                await self.rejoin()
            except CoreError as exc:
                log.warning("%s: images not carried to nodes back: %s", self.server, exc)
            timer = asyncio.ensure_future(self.clock.sleep(self.config.check_seconds))
            moved = asyncio.ensure_future(self.nodes_moved.wait())
            _, pending = await asyncio.wait({timer, moved}, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _measure_forever(self) -> None:
        while True:
            await self.measure()
            self.wake.set()
            await self.clock.sleep(self.config.usage_seconds)

    # the event stream
    def absorb(self, swarm: SwarmClient, events: list[dict[str, Any]]) -> bool:
        """Note what ``events`` say, past the cursor, and move it; True if a check should
        run now. Blocking."""
        cursor = self.store.alert_cursor(self.server)
        since = cursor[0] if cursor else 0
        fresh = [e for e in events if int(e.get("timeNano") or 0) > since]
        if not fresh:
            return False
        wake = False
        notes: list[dict[str, Any]] = []
        for event in fresh:
            action, actor = event.get("Action", ""), event.get("Actor") or {}
            self.handled.append(
                f"{event['timeNano']}/{event.get('Type')}/{action}/{actor.get('ID')}"
            )
            attributes = actor.get("Attributes") or {}
            service = attributes.get(SERVICE_LABEL)
            if event.get("Type") == "node" or (service and action == "die"):
                wake = True
            if service and action == "oom":
                notes.append(self._oom_note(swarm, service, event))
                wake = True

        def note_all() -> None:
            for note in notes:
                self.store.note_alert(**note)

        newest = max(int(e["timeNano"]) for e in fresh)
        self.store.advance_cursor(self.server, newest, len(fresh), note_all)
        return wake

    def _oom_note(self, swarm: SwarmClient, service: str, event: dict[str, Any]) -> dict[str, Any]:
        found = None
        with contextlib.suppress(CoreError):
            found = swarm.inspect_service(service)
        labels = ((found or {}).get("Spec") or {}).get("Labels") or {}
        at = int(event["timeNano"]) / 1e9
        stamp = dt.datetime.fromtimestamp(at, dt.UTC).strftime("%H:%M:%S UTC")
        container = (event.get("Actor") or {}).get("ID", "")[:12]
        return {
            "key": alert_key(self.server, OOM, service),
            "server": self.server,
            "kind": OOM,
            "subject": service,
            "app": labels.get(LABEL_APP),
            "env": labels.get(LABEL_ENV),
            "at": at,
            "detail": f"container {container} was OOM-killed at {stamp}",
        }

    async def follow(self) -> None:
        """Read the event stream forever, reopening it from the cursor when it drops."""
        pause = RECONNECT_FIRST
        loop = asyncio.get_running_loop()
        while True:
            try:
                swarm = await self.client()
                cursor = await asyncio.to_thread(self.store.alert_cursor, self.server)
                self._stream = await asyncio.to_thread(swarm.events, cursor[0] if cursor else None)
                await asyncio.to_thread(self._pump, swarm, self._stream, loop)
                pause = RECONNECT_FIRST  # it ran and ended: reopen soon
            except CoreError as exc:
                log.warning("%s: event stream: %s; reopening in %.1fs", self.server, exc, pause)
            except Exception:  # a connection closed under the SDK breaks in its own ways
                log.exception("%s: event stream broke; reopening in %.1fs", self.server, pause)
            finally:
                if self._stream is not None:
                    self._stream.close()
                    self._stream = None
            self.drops += 1
            await self.clock.sleep(pause)
            pause = min(RECONNECT_MAX, pause * 2)

    def _pump(
        self, swarm: SwarmClient, stream: EventStream, loop: asyncio.AbstractEventLoop
    ) -> None:
        for event in stream:
            future = asyncio.run_coroutine_threadsafe(self._take(swarm, event), loop)
            future.result()

    async def _take(self, swarm: SwarmClient, event: dict[str, Any]) -> None:
        async with self.turn:
            if await asyncio.to_thread(self.absorb, swarm, [event]):
                self.wake.set()
        if event.get("Type") == "node":
            self.nodes_moved.set()

    def drop(self) -> None:
        """Close the stream's connection now, as a network fault would (tests, shutdown)."""
        stream = self._stream
        if stream is not None:
            stream.close()

    async def _pause(self) -> None:
        """Until the next round: ``check_seconds`` of the clock, or sooner when an event
        asks for a check (then a short gap, so a burst of deaths is one check)."""
        gap = min(MIN_CHECK_GAP, self.config.check_seconds)
        timer = asyncio.ensure_future(self.clock.sleep(self.config.check_seconds))
        woken = asyncio.ensure_future(self.wake.wait())
        done, pending = await asyncio.wait({timer, woken}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            task.result()
        if woken in done and timer not in done:
            await self.clock.sleep(gap)

    async def run(self) -> None:
        """Follow events and check every ``alerts.check_seconds``, or at once when an event
        asks for it; an unreachable engine is logged and tried again next round."""
        follower = asyncio.create_task(self.follow())
        self._measurer = asyncio.create_task(self._measure_forever())
        rejoiner = asyncio.create_task(self.rejoin_rounds()) if self.rejoin else None
        try:
            while True:
                try:
                    for post in await self.check():
                        log.info("%s: %s", self.server, post.outcome.title)
                except CoreError as exc:
                    log.warning("%s: alert check failed: %s", self.server, exc)
                await self._pause()
                self.wake.clear()
        finally:
            follower.cancel()
            self._measurer.cancel()
            if rejoiner is not None:
                rejoiner.cancel()
            self.drop()
            await asyncio.gather(
                follower, self._measurer, *([rejoiner] if rejoiner else []), return_exceptions=True
            )
            self._measurer = None
