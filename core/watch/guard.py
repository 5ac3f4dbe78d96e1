"""The guard after a deploy: for ``alerts.guard_seconds`` after a release went live, watch
it; if it crash-loops or stays below its replicas, roll back to the release before it by
itself, tell the deploy's channel why (with the exit code and the log tail), and alert.
A release that passes its window is told so.

The window is a row in SQLite (``guards``), so a restart carries on watching. The guard
never fights a newer change: it acts only while its release is the live one, under the
same app/env lock as deploys (``core.store.locks.held``), and a deploy already holding that lock
makes it wait for the next round (then see the newer release, and stand down).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from core.clock import Clock
from core.config import AlertsConfig
from core.deploy.drift import image_of
from core.deploy.rollback import rollback
from core.errors import CoreError, DeployError
from core.events import Outcome
from core.plane import Plane
from core.store import RELEASE_FAILED
from core.store.alerts import GUARD_ROLLING_BACK
from core.store.locks import held
from core.swarm import comparable_image
from core.watch.alert_rules import CRASHLOOP, OPEN, REPLICAS, Post, alert_key
from core.watch.alerts import log_tail, service_facts

log = logging.getLogger("shipbot.guard")
GUARD_USER = "shipbot:guard"
WATCHED_SECONDS = 30.0  # a guard round this recent means a serve is watching


class GuardBusy(DeployError):
    """Another change of the app/env holds its lock: the guard waits for the next round."""


# (the guard's row, what to tell the deploy's channel and the deploys channels)
Tell = Callable[[dict[str, Any], Outcome], None]
Alert = Callable[[Post], None]


def lock_key(app: str, env: str) -> str:
    """The app/env lock's key, as deploys take it (``commands.locks.lock_key``)."""
    return f"{app}/{env}"


def minutes(seconds: float) -> str:
    return f"{seconds / 60:g}m" if seconds >= 60 else f"{seconds:g}s"


class Guard:
    """Watches every active guard of one server; ``check`` is one round."""

    def __init__(
        self,
        plane: Plane,
        server: str,
        config: AlertsConfig,
        tell: Tell,
        alert: Alert,
        clock: Clock | None = None,
    ) -> None:
        self.plane = plane
        self.server = server
        self.config = config
        self.tell = tell
        self.alert = alert
        self.clock = clock or plane.clock  # the window's time; tests pass their own
        self._below: dict[int, float] = {}  # guard id → since when below its replicas

    @property
    def store(self) -> Any:
        return self.plane.store

    def start(
        self, app: str, env: str, release: int, service: str, platform: str, channel: str
    ) -> int | None:
        """Watch ``release`` from now for ``guard_seconds`` (none when 0)."""
        if self.config.guard_seconds <= 0:
            return None
        return self.store.start_guard(
            server=self.server,
            app=app,
            env=env,
            release=release,
            service=service,
            seconds=self.config.guard_seconds,
            platform=platform,
            channel=channel,
            now=self.clock.time(),
        )

    async def check(self) -> list[str]:
        """One look at every active guard, each app's at once (one app's rollback never
        waits behind another's); returns what each ended as (if it did)."""
        await asyncio.to_thread(self.store.note_guard_round, self.server, self.clock.time())
        rows = await asyncio.to_thread(self.store.active_guards, self.server)
        ended = await asyncio.gather(*(self._guarded(row) for row in rows))
        return [outcome for outcome in ended if outcome]

    async def _guarded(self, row: dict[str, Any]) -> str | None:
        try:
            return await self._one(row)
        except GuardBusy as exc:
            log.info("guard %s: %s", row["id"], exc)
        except CoreError as exc:
            log.warning("guard %s of %s (%s): %s", row["id"], row["app"], row["env"], exc)
        return None

    def watched(self) -> bool:
        """A ``shipbot serve`` ran this server's guard round lately: within three rounds,
        and never less than 30 s (a round on a busy machine takes seconds itself)."""
        seen = self.store.last_guard_round(self.server)
        fresh = max(3 * self.config.check_seconds, WATCHED_SECONDS)
        return seen is not None and self.clock.time() - seen <= fresh

    def late(self, row: dict[str, Any], now: float) -> bool:
        """The window ended longer ago than two rounds: nobody watched its end."""
        return now > row["until"] + 2 * self.config.check_seconds

    async def _one(self, row: dict[str, Any]) -> str | None:
        app, env, number = row["app"], row["env"], row["release"]
        live = await self.plane.db.in_thread(lambda: self.plane.store.live_release(app, env))
        if row["status"] == GUARD_ROLLING_BACK:  # a restart came mid-rollback: carry on
            return await self._roll_back(row, row["reason"] or "the guard was rolling back")
        newest = await self.plane.db.in_thread(lambda: self.plane.store.releases(app, env, 1))
        if newest and newest[0].number > number:  # whatever that deploy's outcome
            reason = f"release {newest[0].number} was deployed after it"
            await asyncio.to_thread(self.store.set_guard, row["id"], "superseded", reason)
            return "superseded"
        if live is None or live.number != number:
            reason = "a newer deploy or a rollback replaced it"
            await asyncio.to_thread(self.store.set_guard, row["id"], "superseded", reason)
            return "superseded"
        if self.late(row, self.clock.time()):
            return await self._unwatched(row)
        swarm = await self.plane.servers.client(self.server)
        service = await asyncio.to_thread(swarm.inspect_service, row["service"])
        if service is None:
            await asyncio.to_thread(
                self.store.set_guard, row["id"], "superseded", "its service was removed"
            )
            return "superseded"
        now = self.clock.time()
        facts, _ = await asyncio.to_thread(service_facts, swarm, service, now, self.config)
        # its own release's tasks (facts count the service's current image), inside its
        # window: never another release's, never after the window
        runs = comparable_image(image_of(service["Spec"]))
        if runs != comparable_image(live.image):
            reason = f"Swarm runs {runs}, not release {number}'s image: see `status --drift`"
            await asyncio.to_thread(self.store.set_guard, row["id"], "superseded", reason)
            return "superseded"
        failures = [f for f in facts.failures if row["started_at"] <= f.at <= row["until"]]
        reason = None
        if len(failures) >= self.config.crash_restarts:
            last = failures[-1]
            reason = (
                f"it crash-loops: {len(failures)} tasks failed since it went live, the last "
                f"with exit code {last.exit_code} ({last.error})"
            )
        elif facts.running < facts.desired and not facts.updating:
            since = self._below.setdefault(row["id"], now)
            if now - since >= self.config.below_replicas_seconds:
                reason = (
                    f"it stayed below its replicas: {facts.running}/{facts.desired} running "
                    f"for {now - since:.0f}s"
                )
        else:
            self._below.pop(row["id"], None)
        if reason is not None:
            return await self._roll_back(row, reason)
        if now >= row["until"]:
            window = minutes(row["until"] - row["started_at"])
            outcome = Outcome(
                True,
                f"🛡️ {app} release {number} passed its guard on {env}: {window} with no "
                "crash loop and every replica running",
                [],
                {"app": app, "env": env, "release": str(number), "server": self.server},
            )
            await asyncio.to_thread(
                self.store.set_guard,
                row["id"],
                "passed",
                None,
                lambda: self.tell(row, outcome),
            )
            return "passed"
        return None

    async def _unwatched(self, row: dict[str, Any]) -> str:
        """The window passed while no ``shipbot serve`` watched: closed, nothing done."""
        app, env, number = row["app"], row["env"], row["release"]
        window = minutes(row["until"] - row["started_at"])
        reason = f"its {window} window ended while no `shipbot serve` watched; nothing was done"
        outcome = Outcome(
            True,
            f"🛡️ {app} release {number} was not watched on {env}: {reason}",
            ["`status` shows how it runs now; the alert watcher covers it from here"],
            {"app": app, "env": env, "release": str(number), "server": self.server},
        )
        await asyncio.to_thread(
            self.store.set_guard, row["id"], "unwatched", reason, lambda: self.tell(row, outcome)
        )
        return "unwatched"

    async def _roll_back(self, row: dict[str, Any], reason: str) -> str:
        app, env, number = row["app"], row["env"], row["release"]

        def busy(holder: dict[str, Any]) -> GuardBusy:
            return GuardBusy(f"{lock_key(app, env)} is held by {holder['owner']}; next round")

        what = f"guard rollback of {app} release {number} ({env})"
        async with held(self.store, lock_key(app, env), GUARD_USER, what, busy):
            live = await self.plane.db.in_thread(lambda: self.plane.store.live_release(app, env))
            if row["status"] != GUARD_ROLLING_BACK and (live is None or live.number != number):
                await asyncio.to_thread(
                    self.store.set_guard, row["id"], "superseded", "replaced meanwhile"
                )
                return "superseded"
            await asyncio.to_thread(self.store.set_guard, row["id"], GUARD_ROLLING_BACK, reason)
            swarm = await self.plane.servers.client(self.server)
            service = await asyncio.to_thread(swarm.inspect_service, row["service"])
            tail: tuple[str, ...] = ()
            code = None
            if service is not None:
                facts, _ = await asyncio.to_thread(
                    service_facts, swarm, service, self.clock.time(), self.config
                )
                if facts.failures:
                    code = facts.failures[-1].exit_code
                    tail = await asyncio.to_thread(
                        log_tail,
                        swarm,
                        row["service"],
                        facts.failures[-1].task,
                        self.config.log_lines,
                    )
            if live is not None and live.number == number:
                result = await self._rollback(app, env, live.previous)
            else:  # the rollback finished before a restart: only the telling is left
                result = Outcome(True, f"{app} is back on release {live.number if live else '?'}")
            return await self._finish(row, reason, result, code, tail)

    async def _rollback(self, app: str, env: str, previous: int | None) -> Outcome:
        """Back to the release live just before (none recorded: nothing to go back to)."""
        if previous is None:
            return Outcome(False, f"no release was live on {env} before it: nothing to go back to")
        outcome: Outcome | None = None
        try:
            async for event in rollback(self.plane, app, env, user=GUARD_USER, number=previous):
                if isinstance(event, Outcome):
                    outcome = event
        except CoreError as exc:
            outcome = Outcome(False, f"the guard could not roll {app} back: {exc}")
        assert outcome is not None
        return outcome

    async def _finish(
        self,
        row: dict[str, Any],
        reason: str,
        result: Outcome,
        code: int | None,
        tail: tuple[str, ...],
    ) -> str:
        app, env, number = row["app"], row["env"], row["release"]
        bad = await self.plane.db.in_thread(lambda: self.plane.store.release(app, env, number))
        if bad is not None and result.ok:
            await self.plane.db.in_thread(
                lambda: self.plane.store.update_release(
                    bad.id, status=RELEASE_FAILED, message=f"rolled back by the guard: {reason}"
                )
            )
        back = (
            (await self.plane.db.in_thread(lambda: self.plane.store.live_release(app, env)))
            if result.ok
            else None
        )
        fields = {"app": app, "env": env, "release": str(number), "server": self.server}
        if code is not None:
            fields["exit code"] = str(code)
        if result.ok and back is not None:
            title = (
                f"🛡️ the guard rolled {app} back on {env} from release {number} to release "
                f"{back.number}"
            )
        else:
            title = f"🛡️ the guard could not roll {app} release {number} back on {env}"
        details = [f"why: {reason}", *([] if result.ok else [f"rollback: {result.title}"])]
        told = Outcome(False, title, details, fields, list(tail))
        kind = CRASHLOOP if reason.startswith("it crash-loops") else REPLICAS
        key = alert_key(self.server, kind, row["service"])
        now = self.clock.time()
        rows = await asyncio.to_thread(self.store.alert_states, self.server)
        standing = {r["key"] for r in rows if r["status"] == OPEN}
        alert = Outcome(
            False,
            crash_title_for(app, env, self.server, reason, code),
            [f"why: {reason}", title],
            {**fields, "service": row["service"]},
            list(tail),
        )
        status = "rolled_back" if result.ok else "failed"

        def inside() -> None:
            self.tell(row, told)
            if key not in standing:  # one alert per failure, whoever saw it first
                self.alert(Post(app, env, alert))
                self.store.put_alert(
                    {
                        "key": key,
                        "server": self.server,
                        "kind": kind,
                        "subject": row["service"],
                        "app": app,
                        "env": env,
                        "status": OPEN,
                        "first_seen": now,
                        "last_seen": now,
                        "opened_at": now,
                        "detail": reason,
                    }
                )

        await asyncio.to_thread(self.store.set_guard, row["id"], status, reason, inside)
        await asyncio.to_thread(
            self.store.audit,
            user=GUARD_USER,
            channel=row["channel"] or "guard",
            command=f"rollback {app} --env {env} (guard of release {number})",
            result="ok" if result.ok else "failed",
            app=app,
            env=env,
            detail=reason,
        )
        self._below.pop(row["id"], None)
        return status


def crash_title_for(app: str, env: str, server: str, reason: str, code: int | None) -> str:
    if reason.startswith("it crash-loops"):
        return f"🔁 {app} ({env}) on {server} crash-looped after its deploy (exit code {code})"
    return f"📉 {app} ({env}) on {server} stayed below its replicas after its deploy"
