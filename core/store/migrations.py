"""The schema's history as sqlite-utils named migrations (the set ``shipbot``).

Each applied migration has its row in ``_sqlite_migrations``. Databases made before that
counted their migrations in ``PRAGMA user_version`` alone; ``migrate`` records those as
applied and runs the rest. ``user_version`` is still kept equal to the number applied, so
an older shipbot opened on a newer file finds nothing left to do instead of re-creating
tables.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time

import sqlite_utils
from sqlite_utils.migrations import Migrations

MIGRATIONS = Migrations("shipbot")


def v1_core(db: sqlite_utils.Database) -> None:
    """Apps, releases, deployments and the audit log."""
    db["apps"].create(
        {
            "name": str,
            "source_kind": str,
            "source": str,
            "ref": str,
            "created_by": str,
            "created_at": float,
        },
        pk="name",
    )
    db["releases"].create(
        {
            "id": int,
            "app": str,
            "env": str,
            "number": int,
            "image": str,
            "image_id": str,
            "source_ref": str,
            "spec": str,
            "status": str,
            "deployed_by": str,
            "created_at": float,
            "finished_at": float,
            "message": str,
        },
        pk="id",
        not_null={"app", "env", "number", "image", "status", "created_at"},
    )
    db["releases"].create_index(["app", "env", "number"], unique=True)
    db["deployments"].create(
        {
            "id": int,
            "app": str,
            "env": str,
            "kind": str,
            "release": int,
            "status": str,
            "started_by": str,
            "pid": int,
            "started_at": float,
            "finished_at": float,
            "message": str,
        },
        pk="id",
    )
    db["deployments"].create_index(["app", "env"])
    db["audit"].create(
        {
            "id": int,
            "ts": float,
            "user": str,
            "channel": str,
            "command": str,
            "app": str,
            "env": str,
            "result": str,
            "detail": str,
        },
        pk="id",
    )
    db["audit"].create_index(["app", "ts"])


def v2_governance(db: sqlite_utils.Database) -> None:
    """Grants, approvals, locks and per-app variables (permissions, issue 4)."""
    db["grants"].create(
        {
            "id": int,
            "user": str,
            "role": str,
            "app": str,
            "env": str,
            "granted_by": str,
            "created_at": float,
        },
        pk="id",
    )
    db["grants"].create_index(["user", "role", "app", "env"], unique=True)
    db["approvals"].create(
        {
            "id": int,
            "app": str,
            "env": str,
            "command": str,
            "requester": str,
            "channel": str,
            "platform": str,
            "required": int,
            "approvers": str,
            "status": str,
            "approved_by": str,
            "created_at": float,
            "expires_at": float,
            "decided_at": float,
            "note": str,
        },
        pk="id",
    )
    db["approvals"].create_index(["status", "expires_at"])
    db["locks"].create(
        {
            "key": str,
            "owner": str,
            "pid": int,
            "host": str,
            "what": str,
            "acquired_at": float,
            "heartbeat_at": float,
        },
        pk="key",
    )
    db["variables"].create(
        {
            "app": str,
            "env": str,
            "key": str,
            "value": str,
            "secret": int,
            "updated_by": str,
            "updated_at": float,
        },
        pk=("app", "env", "key"),
    )
    db["deployments"].add_column("approved_by", str)


def v3_outbox(db: sqlite_utils.Database) -> None:
    """The outbox: messages for chat channels, written first, delivered with retries."""
    db["outbox"].create(
        {
            "id": int,
            "platform": str,
            "channel": str,
            "kind": str,
            "payload": str,
            "status": str,
            "attempts": int,
            "next_attempt_at": float,
            "created_at": float,
            "sent_at": float,
            "last_error": str,
        },
        pk="id",
    )
    db["outbox"].create_index(["platform", "status", "next_attempt_at"])


def v4_requests_credentials_heartbeats(db: sqlite_utils.Database) -> None:
    """Approvals pin what was approved (commit, digest, the typed request, break-glass
    reason); apps keep an encrypted git credential; deployments beat, since a PID says
    nothing when shipbot is PID 1 of its container."""
    for column in ("commit_sha", "digest", "request", "break_glass"):
        db["approvals"].add_column(column, str)
    db["apps"].add_column("credential", str)
    db["deployments"].add_column("heartbeat_at", float)
    # a deployment left running by the old code last showed life when it started
    db.execute("UPDATE deployments SET heartbeat_at = started_at")


def v5_cert_watch(db: sqlite_utils.Database) -> None:
    """What the certificate watcher last saw and said per domain (serial, expiry, the
    alert it left open), so an alert is posted once and closed once across restarts."""
    db["cert_watch"].create(
        {
            "domain": str,
            "app": str,
            "env": str,
            "serial": str,
            "not_after": float,
            "alert": str,
            "error": str,
        },
        pk="domain",
    )


def v6_databases(db: sqlite_utils.Database) -> None:
    """Managed databases (credentials encrypted by the vault) and the apps an admin
    attached each one to: an app gets a database's URL only through such a row."""
    db["databases"].create(
        {
            "name": str,
            "kind": str,
            "version": str,
            "image": str,
            "server": str,
            "credentials": str,
            "created_by": str,
            "created_at": float,
        },
        pk="name",
        not_null={"kind", "version", "image", "server", "credentials", "created_at"},
    )
    db["database_apps"].create(
        {"database": str, "app": str, "attached_by": str, "attached_at": float},
        pk=("database", "app"),
    )


def v7_backups(db: sqlite_utils.Database) -> None:
    """One row per backup run of a database: where its object is, what was sent (size,
    sha256, the ETag S3 must report), its verdict and error, and when retention deleted it."""
    db["backups"].create(
        {
            "id": int,
            "database": str,
            "kind": str,
            "key": str,
            "size": int,
            "raw_size": int,
            "sha256": str,
            "etag": str,
            "status": str,
            "error": str,
            "started_by": str,
            "started_at": float,
            "finished_at": float,
            "deleted_at": float,
        },
        pk="id",
        not_null={"database", "kind", "key", "status", "started_at"},
    )
    db["backups"].create_index(["database", "status", "id"])


def v8_backup_watch(db: sqlite_utils.Database) -> None:
    """What the backup watcher last said per database, and each restore check's result."""
    db["backup_watch"].create(
        {"database": str, "since": float, "missed": float, "stale": float}, pk="database"
    )
    db["backup_verifies"].create(
        {
            "id": int,
            "database": str,
            "backup_id": int,
            "ok": int,
            "detail": str,
            "counts": str,
            "started_by": str,
            "started_at": float,
            "finished_at": float,
        },
        pk="id",
        not_null={"database", "ok", "started_at"},
    )
    db["backup_verifies"].create_index(["database", "id"])


def v9_servers(db: sqlite_utils.Database) -> None:
    """Remote servers with the host key pinned on first use, and SSH login keys (encrypted)."""
    db["servers"].create(
        {
            "name": str,
            "url": str,
            "key": str,
            "host_key_kind": str,
            "host_key": str,
            "role": str,
            "swarm": str,
            "added_by": str,
            "added_at": float,
        },
        pk="name",
        not_null={"url", "key", "host_key_kind", "host_key", "role", "swarm"},
    )
    db["ssh_keys"].create(
        {"name": str, "private": str, "public": str, "created_by": str, "created_at": float},
        pk="name",
        not_null={"private", "public"},
    )
    # the server each app environment was last deployed to (rollback, scale, status follow)
    db["env_servers"].create(
        {"app": str, "env": str, "server": str, "since": float},
        pk=("app", "env"),
        not_null={"server"},
    )


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


def v21_truth(db: sqlite_utils.Database) -> None:
    """Each release remembers the release live before it in its environment (the guard's
    only rollback target), and each server's guard round leaves a heartbeat, so a deploy
    promises a guard only while a ``shipbot serve`` watches."""
    db["releases"].add_column("previous", int)
    db["guard_rounds"].create({"server": str, "seen_at": float, "pid": int}, pk="server")


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


def v20_networks(db: sqlite_utils.Database) -> None:
    """Links an admin granted: ``app`` may reach ``other`` in ``env`` (core/deploy/links.py)."""
    db["links"].create(
        {"app": str, "other": str, "env": str, "granted_by": str, "granted_at": float},
        pk=("app", "other", "env"),
        not_null={"app", "other", "env"},
    )


def v22_identity(db: sqlite_utils.Database) -> None:
    """The control plane's id, carried by every service it makes (core/ownership.py)."""
    db["identity"].create({"key": str, "value": str}, pk="key")
    db["identity"].insert({"key": "plane", "value": secrets.token_hex(8)})


# In order; the first three are the old ``user_version`` 1, 2 and 3.
HISTORY = (
    v1_core,
    v2_governance,
    v3_outbox,
    v4_requests_credentials_heartbeats,
    v5_cert_watch,
    v6_databases,
    v7_backups,
    v8_backup_watch,
    v9_servers,
    v10_alerts,
    v11_pipelines,
    v12_digest,
    v13_images,
    v14_policy,
    v16_domain_grants,
    v17_env_attachments,
    v18_deliveries,
    v20_networks,
    v21_truth,
    v22_identity,
)
for _step in HISTORY:
    MIGRATIONS()(_step)


def _user_version(db: sqlite_utils.Database) -> int:
    return db.execute("PRAGMA user_version").fetchone()[0]


def _unadopted(db: sqlite_utils.Database) -> int:
    """How many migrations ``user_version`` says were applied without a record of it."""
    return 0 if MIGRATIONS.applied(db) else _user_version(db)


def needs_migration(db: sqlite_utils.Database) -> bool:
    """Read-only: whether ``migrate`` has anything to do (so a plain start takes no lock)."""
    return bool(_unadopted(db) or MIGRATIONS.pending(db))


def migrate(db: sqlite_utils.Database) -> None:
    """Bring ``db`` to the newest schema; run it inside one write transaction, so a
    failure anywhere leaves the file as it was and a second process waits, then finds
    nothing to do."""
    adopted = _unadopted(db)
    if adopted:
        MIGRATIONS.ensure_migrations_table(db)
        now = str(dt.datetime.now(dt.UTC))
        db[MIGRATIONS.migrations_table].insert_all(
            {"migration_set": MIGRATIONS.name, "name": step.__name__, "applied_at": now}
            for step in HISTORY[:adopted]
        )
    MIGRATIONS.apply(db)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS.applied(db))}")


def schema_version(db: sqlite_utils.Database) -> int:
    """The number of this set's migrations applied to ``db``."""
    return len(MIGRATIONS.applied(db))
