"""The watch wired to the chat side: one alert watcher per server (with its guard's round
first), posting through the outbox; and the guard started after a deploy's success.

``shipbot serve`` runs ``fleet(...)`` (commands/fleet_watch.py); the deploy command calls
``guard_deploy``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from commands.fleet_watch import SYNC_SECONDS, Fleet
from commands.notify import Notifier
from commands.replies import Followup, Result, encode, mask
from core.config import ControlConfig
from core.events import Outcome
from core.names import service_name
from core.plane import Plane
from core.secrets import Masker, secret_values
from core.servers.rejoin import Rejoin
from core.watch.alert_rules import OPEN, REPLICAS, Post, alert_key
from core.watch.alerts import AlertWatch
from core.watch.guard import Guard, minutes
from core.watch.subjects import watched_services, watcher_owns


def as_result(plane: Plane, outcome: Outcome, app: str | None, env: str | None) -> Result:
    """An outcome as a reply, the app's secret values masked (log tails may print them)."""
    reply = Result(
        outcome.ok,
        outcome.title,
        tuple(outcome.details),
        dict(outcome.fields),
        tuple(outcome.log_tail),
    )
    if app is None:
        return reply
    masked = mask(reply, Masker(secret_values(plane.store, plane.vault, app, env)))
    assert isinstance(masked, Result)
    return masked


def guard_of(plane: Plane, config: ControlConfig, notifier: Notifier, server: str) -> Guard:
    def tell(row: dict[str, Any], outcome: Outcome) -> None:
        """To the channel the deploy was asked in, and the deploys channels."""
        reply = as_result(plane, outcome, row["app"], row["env"])
        origin = (row["platform"], row["channel"]) if row["platform"] else None
        # a console session has ended by now: nobody delivers to it (as expired approvals)
        if origin is not None and origin[0] != "console":
            # the deploy's own message is edited and answered in its thread where known
            told = Followup(**vars(reply), anchor=row["anchor"]) if row.get("anchor") else reply
            plane.store.enqueue(
                platform=origin[0], channel=origin[1], kind="deploys", payload=encode(told)
            )
        notifier.publish("deploys", row["app"], row["env"], reply, skip=origin)

    return Guard(
        plane, server, config.alerts, tell, lambda post: publish_alert(plane, notifier, post)
    )


def publish_alert(plane: Plane, notifier: Notifier, post: Post) -> None:
    reply = as_result(plane, post.outcome, post.app, post.env)
    notifier.publish("alerts", post.app, post.env, reply)


def watcher(plane: Plane, config: ControlConfig, notifier: Notifier, server: str) -> AlertWatch:
    """One server's watcher, running its guard's round before its own."""
    guard = guard_of(plane, config, notifier, server)
    return AlertWatch(
        server,
        lambda: plane.servers.client(server),
        plane.store,
        config.alerts,
        lambda post: publish_alert(plane, notifier, post),
        clock=plane.clock,
        before=guard.check,
        owns=watcher_owns(plane),
        extra=lambda: watched_services(plane, server),
        rejoin=Rejoin(plane, server, watcher_owns(plane)).round,
    )


def watchers(plane: Plane, config: ControlConfig, notifier: Notifier) -> list[AlertWatch]:
    """One watcher per swarm as it stands now: the control plane's own server (when it has
    one), and the first manager of every swarm added over SSH (workers share their
    manager's swarm: its events and nodes are theirs)."""
    return [watcher(plane, config, notifier, server) for server in watched_servers(plane)]


def fleet(plane: Plane, config: ControlConfig, notifier: Notifier) -> Fleet:
    """Every swarm's watcher, kept in step with the servers added or removed while
    ``serve`` runs (``shipbot serve`` runs it)."""
    return Fleet(
        lambda: watched_servers(plane),
        lambda server: watcher(plane, config, notifier, server),
        plane.clock,
        min(SYNC_SECONDS, config.alerts.check_seconds),
    )


def watched_servers(plane: Plane) -> list[str]:
    names, swarms = list(plane.servers.names), set()
    for row in plane.store.servers():
        if row["role"] == "manager" and row["swarm"] not in swarms and row["name"] not in names:
            swarms.add(row["swarm"])
            names.append(row["name"])
    return names


def alert_failed_rollback(
    plane: Plane, notifier: Notifier, result: Result, now: float | None = None
) -> bool:
    """A deploy whose rollback failed leaves its service below its replicas: one alert,
    opened now (the watcher's replicas rule closes it once the service is back), its row
    and its posts in one transaction."""
    fields = result.fields
    if result.ok or fields.get("rollback") != "failed" or "app" not in fields:
        return False
    app, env = fields["app"], fields["env"]
    server = plane.store.env_server(app, env) or plane.server
    service = service_name(app, env)
    key = alert_key(server, REPLICAS, service)
    if any(r["key"] == key and r["status"] == OPEN for r in plane.store.alert_states(server)):
        return False
    at = plane.clock.time() if now is None else now
    post = Post(app, env, Outcome(False, f"📉 {result.title}", list(result.details), fields))
    plane.store.put_alert(
        {
            "key": key,
            "server": server,
            "kind": REPLICAS,
            "subject": service,
            "app": app,
            "env": env,
            "status": OPEN,
            "first_seen": at,
            "last_seen": at,
            "opened_at": at,
            "detail": result.title,
        },
        lambda: publish_alert(plane, notifier, post),
    )
    return True


def guard_deploy(
    plane: Plane,
    config: ControlConfig,
    notifier: Notifier,
    result: Result,
    *,
    platform: str,
    channel: str,
) -> Result:
    """After a deploy's success: start its guard and say so on the result."""
    fields = result.fields
    if not result.ok or "release" not in fields or config.alerts.guard_seconds <= 0:
        return result
    app, env = fields["app"], fields["env"]
    # the server the release went to: its swarm is where the guard watches and rolls back
    server = plane.store.env_server(app, env) or plane.server
    guard = guard_of(plane, config, notifier, server)
    guard.start(app, env, int(fields["release"]), service_name(app, env), platform, channel)
    window = minutes(config.alerts.guard_seconds)
    if guard.watched():
        note = f"🛡️ guarded for {window}: a crash loop or missing replicas rolls it back by itself"
    else:  # the window is kept: a serve started within it guards the rest
        note = (
            f"🛡️ not guarded yet: no `shipbot serve` is watching {server}; one started within "
            f"{window} guards the rest of the window"
        )
    return dataclasses.replace(result, details=(*result.details, note))


def anchor(plane: Plane, platform: str, channel: str, result: Result, message: str) -> bool:
    """The adapter's word that ``message`` shows ``result`` (a deploy's): its guard will
    edit it and answer in its thread."""
    fields = result.fields
    if not result.ok or "release" not in fields or "app" not in fields:
        return False
    return plane.store.set_guard_anchor(
        platform=platform,
        channel=channel,
        app=fields["app"],
        env=fields["env"],
        release=int(fields["release"]),
        anchor=message,
    )
