"""The watch wired to the chat side: one alert watcher per server (with its guard's round
first), posting through the outbox; and the guard started after a deploy's success.

``shipbot serve`` runs ``watchers(dispatcher)``; the deploy command calls ``guard_deploy``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from commands.notify import Notifier
from commands.replies import Result, encode
from core.config import ControlConfig
from core.deploy.guard import Guard, minutes
from core.events import Outcome
from core.names import service_name
from core.plane import Plane
from core.watch.alert_rules import Post
from core.watch.alerts import AlertWatch


def as_result(outcome: Outcome) -> Result:
    return Result(
        outcome.ok,
        outcome.title,
        tuple(outcome.details),
        dict(outcome.fields),
        tuple(outcome.log_tail),
    )


def guard_of(plane: Plane, config: ControlConfig, notifier: Notifier, server: str) -> Guard:
    def tell(row: dict[str, Any], outcome: Outcome) -> None:
        """To the channel the deploy was asked in, and the deploys channels."""
        reply = as_result(outcome)
        origin = (row["platform"], row["channel"]) if row["platform"] else None
        if origin is not None:
            plane.store.enqueue(
                platform=origin[0], channel=origin[1], kind="deploys", payload=encode(reply)
            )
        notifier.publish("deploys", row["app"], row["env"], reply, skip=origin)

    return Guard(plane, server, config.alerts, tell, lambda post: publish_alert(notifier, post))


def publish_alert(notifier: Notifier, post: Post) -> None:
    notifier.publish("alerts", post.app, post.env, as_result(post.outcome))


def watchers(plane: Plane, config: ControlConfig, notifier: Notifier) -> list[AlertWatch]:
    """One watcher per server, each running its guard's round before its own."""
    out = []
    for server in plane.servers.names:
        guard = guard_of(plane, config, notifier, server)
        out.append(
            AlertWatch(
                server,
                lambda server=server: plane.servers.client(server),
                plane.store,
                config.alerts,
                lambda post: publish_alert(notifier, post),
                before=guard.check,
            )
        )
    return out


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
    guard = guard_of(plane, config, notifier, plane.server)
    app, env = fields["app"], fields["env"]
    guard.start(app, env, int(fields["release"]), service_name(app, env), platform, channel)
    window = minutes(config.alerts.guard_seconds)
    note = f"🛡️ guarded for {window}: a crash loop or missing replicas rolls it back by itself"
    return dataclasses.replace(result, details=(*result.details, note))
