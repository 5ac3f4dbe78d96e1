"""The schema's first steps (v1-v9): apps, releases and the audit; governance, the outbox,
heartbeats, certificates, databases and backups, servers. Applied in
``core.store.migrations.HISTORY``'s order."""

from __future__ import annotations

import sqlite_utils


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
