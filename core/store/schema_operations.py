"""The schema's steps for running apps (v10-v13): standing alerts and the guard, pipelines
(webhooks and previews), the digest, registry logins and CI tokens. Applied in
``core.store.migrations.HISTORY``'s order."""

from __future__ import annotations

import sqlite_utils


def v10_alerts(db: sqlite_utils.Database) -> None:
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


def v11_pipelines(db: sqlite_utils.Database) -> None:
    """Git webhooks' secrets and forge tokens per app (encrypted by the vault), and the
    preview environments open per pull request."""
    db["webhooks"].create(
        {"app": str, "secret": str, "forge_token": str, "set_by": str, "set_at": float},
        pk="app",
    )
    db["previews"].create(
        {
            "app": str,
            "number": int,
            "env": str,
            "forge": str,
            "repository": str,
            "head_sha": str,
            "head_ref": str,
            "author": str,
            "title": str,
            "domain": str,
            "volumes": str,
            "status": str,
            "opened_at": float,
            "updated_at": float,
        },
        pk=("app", "number"),
        not_null={"app", "number", "env", "head_sha", "status", "opened_at"},
    )


def v12_digest(db: sqlite_utils.Database) -> None:
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


def v13_images(db: sqlite_utils.Database) -> None:
    """Registry logins (per app, or ``*`` for every app; the password encrypted) and the
    tokens CI deploys with (only a keyed digest of each is kept)."""
    db["registry_logins"].create(
        {
            "app": str,
            "registry": str,
            "username": str,
            "secret": str,
            "set_by": str,
            "updated_at": float,
        },
        pk=("app", "registry"),
        not_null={"app", "registry", "username", "secret"},
    )
    db["ci_tokens"].create(
        {
            "name": str,
            "app": str,
            "token_hash": str,
            "created_by": str,
            "created_at": float,
            "used_at": float,
        },
        pk="name",
        not_null={"name", "app", "token_hash"},
    )
