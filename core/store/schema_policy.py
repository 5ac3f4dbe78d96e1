"""The schema's steps for policy and truth (v14-v23): accepted policies, domain grants,
attachments per environment, webhook deliveries and people, links between apps, the
release live before each one and the guard's rounds, the control plane's own id, where each
backup's object is and who accepted a suspect one. Applied
in ``core.store.migrations.HISTORY``'s order."""

from __future__ import annotations

import json
import secrets
import time

import sqlite_utils


def v14_policy(db: sqlite_utils.Database) -> None:
    """Each app's accepted policy (core/policy): the JSON an admin accepted, the commit it
    was read at, who accepted it and when."""
    db["policies"].create(
        {
            "app": str,
            "policy": str,
            "commit_sha": str,
            "accepted_by": str,
            "accepted_at": float,
        },
        pk="app",
        not_null={"app", "policy", "accepted_by"},
    )


def v16_domain_grants(db: sqlite_utils.Database) -> None:
    """Which domains each app may route (core/edge/grants.py). What live releases route
    today was routed before grants existed: it is granted to the app in that environment,
    by ``upgrade``; anything new needs an admin's ``domain grant``."""
    db["domain_grants"].create(
        {
            "id": int,
            "app": str,
            "pattern": str,
            "env": str,
            "granted_by": str,
            "created_at": float,
        },
        pk="id",
        not_null={"app", "pattern", "env", "granted_by", "created_at"},
    )
    db["domain_grants"].create_index(["app", "pattern", "env"], unique=True)
    db["domain_grants"].create_index(["pattern"])
    # the one reader of Traefik's host rules, asked here alone: the store's history is the
    # only part of the store that reads what an earlier shipbot wrote into service labels
    from core.edge.rules import hosts_in

    live = db.execute("SELECT app, env, spec FROM releases WHERE status = 'live'").fetchall()
    for app, env, spec in live:
        labels = json.loads(spec or "{}").get("Labels") or {}
        rules = [
            v
            for k, v in labels.items()
            if k.startswith("traefik.http.routers.") and k.endswith(".rule")
        ]
        for domain in sorted({d for r in rules if isinstance(r, str) for d in hosts_in(r)}):
            db.execute(
                "INSERT OR IGNORE INTO domain_grants (app, pattern, env, granted_by, created_at) "
                "VALUES (?, ?, ?, 'upgrade', ?)",
                [app, domain, env, time.time()],
            )


def v17_env_attachments(db: sqlite_utils.Database) -> None:
    """A database is attached to an app *in one environment*: a staging deploy never gets
    production's URL because app.yml names it. Every attachment made before was per app
    and becomes a production one; other environments need an admin's `db attach --env`."""
    db["database_attachments"].create(
        {"database": str, "app": str, "env": str, "attached_by": str, "attached_at": float},
        pk=("database", "app", "env"),
    )
    db.execute(
        "INSERT INTO database_attachments (database, app, env, attached_by, attached_at) "
        "SELECT database, app, 'production', attached_by, attached_at FROM database_apps"
    )
    db["database_apps"].drop()


def v18_deliveries(db: sqlite_utils.Database) -> None:
    """Webhook deliveries already handled (by the forge's delivery id and by the digest of
    the signed body, kept a week and more) with the commit and who pushed it; the forge
    logins an admin links to chat users; and the person behind each CI token."""
    db["deliveries"].create(
        {
            "key": str,
            "forge": str,
            "delivery": str,
            "body_digest": str,
            "app": str,
            "commit_sha": str,
            "pushed_by": str,
            "received_at": float,
        },
        pk="key",
        not_null={"forge", "delivery", "body_digest", "received_at"},
    )
    db["deliveries"].create_index(["forge", "body_digest"], unique=True)
    db["deliveries"].create_index(["app", "commit_sha"])
    db["deliveries"].create_index(["received_at"])
    db["people"].create(
        {"user": str, "login": str, "added_by": str, "added_at": float},
        pk=("user", "login"),
    )
    db["ci_tokens"].add_column("owner", str)


def v20_networks(db: sqlite_utils.Database) -> None:
    """Links an admin granted: ``app`` may reach ``other`` in ``env`` (core/deploy/links.py)."""
    db["links"].create(
        {"app": str, "other": str, "env": str, "granted_by": str, "granted_at": float},
        pk=("app", "other", "env"),
        not_null={"app", "other", "env"},
    )


def v21_truth(db: sqlite_utils.Database) -> None:
    """Each release remembers the release live before it in its environment (the guard's
    only rollback target), and each server's guard round leaves a heartbeat, so a deploy
    promises a guard only while a ``shipbot serve`` watches."""
    db["releases"].add_column("previous", int)
    db["guard_rounds"].create({"server": str, "seen_at": float, "pid": int}, pk="server")


def v22_identity(db: sqlite_utils.Database) -> None:
    """The control plane's id, carried by every service it makes (core/ownership.py)."""
    db["identity"].create({"key": str, "value": str}, pk="key")
    db["identity"].insert({"key": "plane", "value": secrets.token_hex(8)})


def v23_backup_places(db: sqlite_utils.Database) -> None:
    """Each backup row names the S3 endpoint and bucket its object went to, so moving the
    bucket orphans no recorded backup (rows made before say NULL: the configured ones), and
    who accepted a suspect (too small) backup as the new baseline, and when."""
    for column in ("endpoint", "bucket", "accepted_by"):
        db["backups"].add_column(column, str)
    db["backups"].add_column("accepted_at", float)
