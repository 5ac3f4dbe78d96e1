"""What a server's facts mean as alerts: the pure state machine of ``core.watch.alerts``.

``step`` takes what the engine shows now (services with their failed tasks, nodes with
their use), the alerts standing from last time and the time, and returns the posts and the
alerts to keep. An alert is keyed ``server/kind/subject``; it is posted once when it opens
and once more when it recovers, so a watcher that reads the same facts twice posts nothing
new.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from core.config import AlertsConfig
from core.events import Outcome

CRASHLOOP = "crashloop"
OOM = "oom"
REPLICAS = "replicas"
NODE_DOWN = "node_down"
NODE_DRAINED = "node_drained"
DISK = "disk"
MEMORY = "memory"
SERVER_AWAY = "server_away"  # the server's engine did not answer a whole round
PENDING, OPEN, CLOSED = "pending", "open", "closed"


@dataclass(frozen=True)
class TaskFailure:
    task: str
    at: float
    exit_code: int | None
    error: str


@dataclass(frozen=True)
class ServiceFacts:
    service: str
    app: str
    env: str
    desired: int
    running: int
    updating: bool = False  # a rollout is under way: the deploy reports on it
    failures: tuple[TaskFailure, ...] = ()  # of the current image, newest last
    log_tail: tuple[str, ...] = ()  # the newest failed task's last lines
    # the newest failure whose container the kernel killed for memory (its State.OOMKilled,
    # where the engine can inspect it): finds OOM kills whose event was lost
    oom_at: float | None = None


@dataclass(frozen=True)
class NodeFacts:
    id: str
    hostname: str
    state: str  # ready, down, unknown, disconnected
    availability: str  # active, pause, drain
    apps: tuple[str, ...] = ()  # "app (env)" with tasks on the node
    disk_percent: float | None = None  # None: not measured this round
    memory_percent: float | None = None


@dataclass(frozen=True)
class Facts:
    server: str
    services: tuple[ServiceFacts, ...]
    nodes: tuple[NodeFacts, ...]
    guarded: frozenset[str] = frozenset()  # services a guard watches: it owns their alerts


@dataclass(frozen=True)
class Alert:
    key: str
    server: str
    kind: str
    subject: str
    app: str | None
    env: str | None
    status: str
    first_seen: float
    last_seen: float
    opened_at: float | None = None
    closed_at: float | None = None
    detail: str = ""


@dataclass(frozen=True)
class Post:
    app: str | None
    env: str | None
    outcome: Outcome


def alert_key(server: str, kind: str, subject: str) -> str:
    return f"{server}/{kind}/{subject}"


def where(server: str, app: str | None, env: str | None) -> str:
    return f"{app} ({env}) on {server}" if app else f"server {server}"


def crash_title(server: str, facts: ServiceFacts, count: int) -> str:
    code = facts.failures[-1].exit_code if facts.failures else None
    return (
        f"🔁 {facts.app} ({facts.env}) on {server} is crash-looping: "
        f"{count} tasks failed, the last with exit code {code}"
    )


def fields_of(server: str, app: str | None, env: str | None, **more: str) -> dict[str, str]:
    base = {"server": server}
    if app:
        base.update(app=app, env=env or "")
    return {**base, **more}


def step(
    facts: Facts,
    previous: Mapping[str, Alert],
    now: float,
    config: AlertsConfig,
) -> tuple[list[Post], dict[str, Alert]]:
    """The server's posts and the alerts (pending and open) to keep."""
    posts: list[Post] = []
    kept: dict[str, Alert] = {}
    server = facts.server
    seen: set[str] = set()

    def keep(alert: Alert) -> None:
        kept[alert.key] = alert
        seen.add(alert.key)

    def close(alert: Alert, title: str) -> None:
        keep(dataclasses.replace(alert, status=CLOSED, closed_at=now))
        posts.append(
            Post(
                alert.app,
                alert.env,
                Outcome(True, title, [], fields_of(server, alert.app, alert.env)),
            )
        )

    away = previous.get(alert_key(server, SERVER_AWAY, server))
    if away is not None and away.status == OPEN:  # this round read it: it answers again
        since = since_words(away.first_seen)
        close(away, f"✅ server {server} answers again (unreachable since {since})")
    # a closed alert is kept as the time it closed: a crash loop counts failures after it
    standing = {k: a for k, a in previous.items() if a.status != CLOSED}
    closed = {k: a.closed_at or 0.0 for k, a in previous.items() if a.status == CLOSED}
    for svc in facts.services:
        _service(svc, facts, standing, closed, now, config, posts, keep, close)
    for node in facts.nodes:
        _node(node, server, standing, config, now, posts, keep, close)
    services = {s.service for s in facts.services}
    nodes = {n.id for n in facts.nodes}
    for key, alert in previous.items():
        if key in seen or alert.kind == SERVER_AWAY:
            continue
        gone = (alert.subject not in services) if alert.app else (alert.subject not in nodes)
        if gone and alert.status == OPEN:
            close(
                alert,
                f"✅ {where(server, alert.app, alert.env)}: {alert.subject} is gone; "
                f"the {alert.kind.replace('_', ' ')} alert is closed",
            )
        elif not gone:
            keep(alert)  # e.g. a node not measured this round keeps its disk alert
    return posts, kept


def _service(
    svc: ServiceFacts,
    facts: Facts,
    previous: Mapping[str, Alert],
    closed: Mapping[str, float],
    now: float,
    config: AlertsConfig,
    posts: list[Post],
    keep: Any,
    close: Any,
) -> None:
    server = facts.server
    at_replicas = svc.running >= svc.desired
    guarded = svc.service in facts.guarded
    fields = fields_of(server, svc.app, svc.env, service=svc.service)

    def new(kind: str, status: str, detail: str = "") -> Alert:
        return Alert(
            alert_key(server, kind, svc.service),
            server,
            kind,
            svc.service,
            svc.app,
            svc.env,
            status,
            now,
            now,
            now if status == OPEN else None,
            None,
            detail,
        )

    def over(last_failure: float) -> bool:
        """A failure this old has already recovered (a loop that ended before the watcher
        started, or while nobody checked): opening its alert would close it next round."""
        return at_replicas and now - last_failure >= config.recover_seconds

    # crash loop: failed tasks of the current image within the window
    crashing = False
    key = alert_key(server, CRASHLOOP, svc.service)
    after = max(now - config.crash_window_seconds, closed.get(key, 0.0))
    recent = [f for f in svc.failures if f.at >= after and f.at > closed.get(key, 0.0)]
    prev = previous.get(key)
    if prev is not None and prev.status == OPEN:
        last = max([prev.last_seen, *(f.at for f in recent)])
        if at_replicas and now - last >= config.recover_seconds and not svc.updating:
            close(
                prev,
                f"✅ {svc.app} ({svc.env}) on {server} recovered: {svc.running}/"
                f"{svc.desired} running, no task failed for {config.recover_seconds}s; "
                "the crash-loop alert is closed",
            )
        else:
            keep(dataclasses.replace(prev, last_seen=last))
            crashing = True
    elif (
        len(recent) >= config.crash_restarts
        and not svc.updating
        and not guarded
        and not over(recent[-1].at)
    ):
        last = recent[-1]
        detail = f"exit code {last.exit_code}: {last.error}"
        posts.append(
            Post(
                svc.app,
                svc.env,
                Outcome(
                    False,
                    crash_title(server, svc, len(recent)),
                    [
                        f"why: {last.error} (exit code {last.exit_code})",
                        f"{svc.running}/{svc.desired} running; {len(recent)} failures in the last "
                        f"{config.crash_window_seconds}s",
                    ],
                    {**fields, "exit code": str(last.exit_code)},
                    list(svc.log_tail),
                ),
            )
        )
        keep(dataclasses.replace(new(CRASHLOOP, OPEN, detail), last_seen=last.at))
        crashing = True

    # OOM kills: noted from the event stream as pending (or seen on a failed task), posted here
    key = alert_key(server, OOM, svc.service)
    prev = previous.get(key)
    found = svc.oom_at is not None and svc.oom_at > closed.get(key, 0.0)
    if prev is None and found and not over(svc.oom_at or 0.0):
        prev = new(OOM, PENDING, "a task's container was OOM-killed (exit code 137)")
    if prev is not None and prev.status == PENDING:
        posts.append(
            Post(
                svc.app,
                svc.env,
                Outcome(
                    False,
                    f"💥 {svc.app} ({svc.env}) on {server}: a task was killed for running out "
                    "of memory (OOM)",
                    [prev.detail, "raise `resources.memory` in app.yml or find the leak"],
                    fields,
                    list(svc.log_tail),
                ),
            )
        )
        keep(dataclasses.replace(prev, status=OPEN, opened_at=now))
    elif prev is not None and prev.status == OPEN:
        prev = dataclasses.replace(prev, last_seen=max(prev.last_seen, svc.oom_at or 0.0))
        if at_replicas and now - prev.last_seen >= config.recover_seconds:
            close(
                prev,
                f"✅ {svc.app} ({svc.env}) on {server}: no OOM kill for "
                f"{config.recover_seconds}s and {svc.running}/{svc.desired} running; "
                "the OOM alert is closed",
            )
        else:
            keep(prev)

    # below the desired replicas for longer than the threshold
    key = alert_key(server, REPLICAS, svc.service)
    prev = previous.get(key)
    if at_replicas:
        if prev is not None and prev.status == OPEN:
            close(
                prev,
                f"✅ {svc.app} ({svc.env}) on {server} is back at {svc.running}/"
                f"{svc.desired} replicas; the alert is closed",
            )
    elif prev is not None and prev.status == OPEN:
        keep(prev)
    elif not (svc.updating or guarded or crashing):  # the deploy, guard or crash alert says it
        pending = prev or new(REPLICAS, PENDING, f"{svc.running}/{svc.desired}")
        below = now - pending.first_seen
        if below >= config.below_replicas_seconds:
            posts.append(
                Post(
                    svc.app,
                    svc.env,
                    Outcome(
                        False,
                        f"📉 {svc.app} ({svc.env}) on {server} runs {svc.running} of "
                        f"{svc.desired} replicas, for {below:.0f}s",
                        ["`status` shows its tasks; `logs` what they said"],
                        fields,
                        list(svc.log_tail),
                    ),
                )
            )
            keep(dataclasses.replace(pending, status=OPEN, opened_at=now, last_seen=now))
        else:
            keep(dataclasses.replace(pending, last_seen=now))


def _node(
    node: NodeFacts,
    server: str,
    previous: Mapping[str, Alert],
    config: AlertsConfig,
    now: float,
    posts: list[Post],
    keep: Any,
    close: Any,
) -> None:
    apps = ", ".join(node.apps) or "no app tasks"
    name = f"node {node.hostname} ({node.id[:12]})"
    fields = fields_of(server, None, None, node=node.hostname, apps=apps)
    checks = [
        (
            NODE_DOWN,
            node.state != "ready",
            f"🔌 {name} of server {server} is {node.state}",
            f"✅ {name} of server {server} is ready again; the alert is closed",
        ),
        (
            NODE_DRAINED,
            node.availability != "active",
            f"🚧 {name} of server {server} is set to {node.availability}: its tasks move away",
            f"✅ {name} of server {server} is active again; the alert is closed",
        ),
    ]
    for kind, percent, limit in (
        (DISK, node.disk_percent, config.disk_percent),
        (MEMORY, node.memory_percent, config.memory_percent),
    ):
        key = alert_key(server, kind, node.id)
        if percent is None:  # not measured this round: the alert stands as it was
            if key in previous:
                keep(previous[key])
            continue
        what = "disk (the engine's data root)" if kind == DISK else "memory"
        checks.append(
            (
                kind,
                percent >= limit,
                f"💽 {name} of server {server}: {what} {percent:g}% used (limit {limit}%)",
                f"✅ {name} of server {server}: {what} {percent:g}% used, under {limit}%; "
                "the alert is closed",
            )
        )
    for kind, bad, alert_text, recovery in checks:
        key = alert_key(server, kind, node.id)
        prev = previous.get(key)
        if bad and prev is None:
            posts.append(
                Post(None, None, Outcome(False, alert_text, [f"apps on it: {apps}"], fields))
            )
            keep(
                Alert(key, server, kind, node.id, None, None, OPEN, now, now, now, None, alert_text)
            )
        elif bad:
            keep(dataclasses.replace(prev, last_seen=now))
        elif prev is not None and prev.status == OPEN:
            close(prev, recovery)


def since_words(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def alerts_from_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, Alert]:
    names = {f.name for f in dataclasses.fields(Alert)}
    return {row["key"]: Alert(**{k: v for k, v in row.items() if k in names}) for row in rows}
