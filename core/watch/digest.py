"""The daily digest: one post per channel, on ``digest.cron`` (APScheduler, in
``shipbot serve``), through the outbox.

A channel gets a digest when one of its routes in ``notify`` takes ``digest`` (every route
does by default). Its digest holds what its routes would have told it anyway, for the last
``digest.hours``: each section is made by a provider that asks ``Scope.wants`` whether the
channel takes that kind of news about that app and environment (deploys and failures:
``deploys``; certificates: ``certs``; backups: ``backups``; drift and open alerts:
``alerts``). Adding a section is adding a provider to ``PROVIDERS``.

A digest is recorded per channel and fire time in the transaction that queues it, so a
restart inside the misfire grace, or a second process, never posts it twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from core.clock import SYSTEM, Clock
from core.config import DigestConfig, NotifyRoute
from core.scheduler.jobs import last_fire
from core.store import Store
from core.store.backups import BACKUP_FAILED
from core.watch.backups import ago, when
from core.watch.certs import EXPIRY, FAILED

UTC = dt.UTC
MAX_LINES = 10  # per list in a section; the rest is counted


Mask = Callable[[str | None, str | None, str], str]  # app, env, text → text fit to show


@dataclass(frozen=True)
class Scope:
    """One channel's routes: what it takes news of; and ``mask``, which hides in a line
    about one app and environment that one's secrets (and credentials in any URL)."""

    routes: tuple[NotifyRoute, ...]
    mask: Mask = field(compare=False)

    def wants(self, kind: str, app: str | None = None, env: str | None = None) -> bool:
        return any(
            kind in route.kinds
            and (app is None or any(fnmatchcase(app, p) for p in route.apps))
            and (env is None or any(fnmatchcase(env, p) for p in route.envs))
            for route in self.routes
        )


@dataclass(frozen=True)
class Window:
    start: float
    end: float

    @property
    def hours(self) -> int:
        return round((self.end - self.start) / 3600)


@dataclass(frozen=True)
class Section:
    title: str
    lines: tuple[str, ...] = ()


Provider = Callable[[Store, Scope, Window], Section | None]


def capped(lines: Sequence[str]) -> tuple[str, ...]:
    extra = len(lines) - MAX_LINES
    return tuple(lines[:MAX_LINES]) + ((f"… and {extra} more",) if extra > 0 else ())


def _at(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, UTC).strftime("%m-%d %H:%M")


def _what(row: dict) -> str:
    release = f" release {row['release']}" if row["release"] is not None else ""
    return f"{row['app']} ({row['env']}) {row['kind']}{release}"


def deploys(store: Store, scope: Scope, window: Window) -> Section | None:
    """Changes that succeeded in the window, and how many did not."""
    if not scope.wants("deploys"):
        return None
    rows = [
        r
        for r in store.deployments_between(window.start, window.end)
        if scope.wants("deploys", r["app"], r["env"])
    ]
    good = [r for r in rows if r["status"] == "succeeded"]
    title = f"Deploys: {len(good)} succeeded, {len(rows) - len(good)} did not"
    return Section(
        title,
        capped(
            [
                scope.mask(
                    r["app"],
                    r["env"],
                    f"✅ {_what(r)} by {r['started_by']} at {_at(r['finished_at'])}",
                )
                for r in good
            ]
        ),
    )


def failures(store: Store, scope: Scope, window: Window) -> Section | None:
    """Changes that failed, were interrupted or ended unknown in the window, with why."""
    if not scope.wants("deploys"):
        return None
    bad = [
        r
        for r in store.deployments_between(window.start, window.end)
        if r["status"] != "succeeded" and scope.wants("deploys", r["app"], r["env"])
    ]
    if not bad:
        return Section("Failures: none")
    lines = [
        scope.mask(
            r["app"],
            r["env"],
            f"❌ {_what(r)} {r['status']} at {_at(r['finished_at'])}: {r['message'] or '?'}",
        )[:300]
        for r in bad
    ]
    return Section(f"Failures: {len(bad)}", capped(lines))


def certificates(store: Store, scope: Scope, window: Window) -> Section | None:
    """Every watched domain's certificate: failures and expiry alerts first, then the
    soonest to end of the good ones."""
    rows = [r for r in store.cert_states() if scope.wants("certs", r["app"], r["env"])]
    if not rows:
        return None
    lines = []
    for row in rows:
        if row["alert"] == FAILED or (row["error"] and not row["not_after"]):
            error = scope.mask(row["app"], row["env"], row["error"] or "could not be obtained")
            lines.append(f"❌ {row['domain']}: {error}")
        elif row["alert"] == EXPIRY:
            lines.append(f"⚠️ {row['domain']} ends {when(row['not_after'])}, not renewed")
    good = sorted(
        (r for r in rows if r["not_after"] and not r["alert"]), key=lambda r: r["not_after"]
    )
    if good:
        soon = good[0]
        left = soon["not_after"] - window.end
        lines.append(
            f"🔒 {len(good)} valid; the soonest to end: {soon['domain']} in {ago(left)} "
            f"({when(soon['not_after'])})"
        )
    return Section(f"Certificates: {len(rows)}", capped(lines))


def backups(store: Store, scope: Scope, window: Window) -> Section | None:
    """Each database's last good backup and its failures in the window."""
    names = sorted({d["name"] for d in store.databases()} | set(store.backup_names()))
    names = [n for n in names if scope.wants("backups", n)]
    if not names:
        return None
    failed = [
        r
        for r in store.backups_between(window.start, window.end)
        if r["status"] == BACKUP_FAILED and r["database"] in names
    ]
    lines = []
    for name in names:
        good = store.good_backups(name)
        last = (
            f"last good backup {ago(window.end - good[0]['finished_at'])} ago "
            f"(backup {good[0]['id']})"
            if good
            else "no good backup yet"
        )
        mine = [r for r in failed if r["database"] == name]
        error = scope.mask(None, None, mine[-1]["error"] or "?")[:160] if mine else ""
        fails = f", {len(mine)} failed: {error}" if mine else ""
        lines.append(f"{'⚠️' if mine or not good else '💾'} {name}: {last}{fails}")
    return Section(f"Backups: {len(names)} databases", capped(lines))


def drift(store: Store, scope: Scope, window: Window) -> Section | None:
    """What the drift watcher found and is still open."""
    if not scope.wants("alerts"):
        return None
    rows = [r for r in store.drift_states() if scope.wants("alerts", r["app"], r["env"])]
    if not rows:
        return Section("Drift: none")
    lines = [f"⚠️ {r['app']} ({r['env']}) on {r['server']}: {r['kind']}" for r in rows]
    return Section(f"Drift: {len(rows)} open (`status --drift`)", capped(lines))


def alerts(store: Store, scope: Scope, window: Window) -> Section | None:
    """Failure alerts (core/watch/alerts.py) posted and not yet closed by a recovery."""
    if not scope.wants("alerts"):
        return None
    rows = [
        r for r in store.open_alerts() if scope.wants("alerts", r["app"] or None, r["env"] or None)
    ]
    if not rows:
        return Section("Alerts: none open")
    lines = [
        scope.mask(
            r["app"] or None,
            r["env"] or None,
            f"🚨 {r['kind']} on {r['server']}: {r['subject']} (since {_at(r['opened_at'])})",
        )
        for r in rows
    ]
    return Section(f"Alerts: {len(rows)} open", capped(lines))


PROVIDERS: tuple[Provider, ...] = (deploys, failures, certificates, backups, drift, alerts)


def render(fired: dt.datetime, window: Window, sections: Iterable[Section]) -> str:
    head = f"📋 shipbot digest for {fired:%Y-%m-%d %H:%M} UTC, the last {window.hours} h"
    body = ["\n".join((f"*{s.title}*", *(f"  {line}" for line in s.lines))) for s in sections]
    return "\n\n".join((head, *body))


def channels(routes: Iterable[NotifyRoute], mask: Mask) -> dict[tuple[str, str], Scope]:
    """Every (platform, channel) one of whose routes takes ``digest``, with all its routes."""
    grouped: dict[tuple[str, str], list[NotifyRoute]] = {}
    for route in routes:
        grouped.setdefault((route.platform, route.channel), []).append(route)
    return {
        where: Scope(tuple(found), mask)
        for where, found in sorted(grouped.items())
        if any("digest" in r.kinds for r in found)
    }


Enqueue = Callable[[str, str, str], int]  # platform, channel, text → outbox id


@dataclass(frozen=True)
class Posted:
    platform: str
    channel: str
    text: str


class Digest:
    """What the scheduler runs at each fire of ``digest.cron``."""

    def __init__(
        self,
        store: Store,
        config: DigestConfig,
        routes: Iterable[NotifyRoute],
        enqueue: Enqueue,
        *,
        mask: Mask,
        providers: Sequence[Provider] = PROVIDERS,
        clock: Clock = SYSTEM,
    ) -> None:
        self.store = store
        self.config = config
        self.channels = channels(routes, mask)
        self.enqueue = enqueue
        self.providers = tuple(providers)
        self.clock = clock

    def post_now(self) -> list[Posted]:
        """The digest of the latest fire time, to every channel that has not had it."""
        fired = last_fire(self.config.cron, self.clock.now())
        if fired is None:
            return []
        end = fired.timestamp()
        window = Window(end - self.config.hours * 3600, end)
        posted = []
        for (platform, channel), scope in self.channels.items():
            sections = [s for p in self.providers if (s := p(self.store, scope, window))]
            text = render(fired, window, sections)

            def post(platform: str = platform, channel: str = channel, text: str = text) -> int:
                return self.enqueue(platform, channel, text)

            if self.store.digest_posted(platform, channel, end, post):
                posted.append(Posted(platform, channel, text))
        return posted

    async def run(self) -> list[Posted]:
        return await asyncio.to_thread(self.post_now)
