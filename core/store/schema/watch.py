"""The ``watch`` room's migrations: standing alerts and the guard, the digest and the drift
watch.

A new step is one more function here, listed in ``STEPS`` with the next free number."""

from __future__ import annotations

from core.store.sql import Database


def v10_alerts(db: Database) -> None:
    """Standing alerts per server (open until a recovery post closes them), each server's
    event cursor, and the guard window after every deploy."""
    db["alerts"].create(
        {
            "key": str,
            "server": str,
            "kind": str,
            "subject": str,
            "app": str,
            "env": str,
            "status": str,
            "first_seen": float,
            "last_seen": float,
            "opened_at": float,
            "closed_at": float,
            "detail": str,
        },
        pk="key",
        not_null={"server", "kind", "subject", "status", "first_seen"},
    )
    db["alert_cursors"].create({"server": str, "since_ns": int, "events": int}, pk="server")
    db["guards"].create(
        {
            "id": int,
            "server": str,
            "app": str,
            "env": str,
            "release": int,
            "service": str,
            "started_at": float,
            "until": float,
            "status": str,
            "platform": str,
            "channel": str,
            "reason": str,
            "finished_at": float,
            "anchor": str,  # the deploy's message in its chat (a Slack ts), once known
        },
        pk="id",
        not_null={"server", "app", "env", "release", "service", "started_at", "until", "status"},
    )
    db["guards"].create_index(["status"])


def v12_digest(db: Database) -> None:
    """The daily digest's posts, one per channel and fire time, so a restart inside the
    misfire grace or a second process never posts one twice; and the drift watcher's open
    findings, so each difference is posted once and closed once across restarts."""
    db["digest_posts"].create(
        {"platform": str, "channel": str, "fired_at": float, "outbox_id": int},
        pk=("platform", "channel", "fired_at"),
    )
    db["drift_watch"].create(
        {"key": str, "server": str, "app": str, "env": str, "kind": str, "detail": str},
        pk="key",
    )


STEPS = (
    v10_alerts,
    v12_digest,
)
