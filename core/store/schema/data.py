"""The ``data`` room's migrations: managed databases, their backups and the backup watch,
attachments per environment, where each backup's object is.

A new step is one more function here, listed in ``STEPS`` with the next free number."""

from __future__ import annotations

from core.store.sql import Database


def v6_databases(db: Database) -> None:
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


def v7_backups(db: Database) -> None:
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


def v8_backup_watch(db: Database) -> None:
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


def v17_env_attachments(db: Database) -> None:
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


def v23_backup_places(db: Database) -> None:
    """Each backup row names the S3 endpoint and bucket its object went to, so moving the
    bucket orphans no recorded backup (rows made before say NULL: the configured ones), and
    who accepted a suspect (too small) backup as the new baseline, and when."""
    for column in ("endpoint", "bucket", "accepted_by"):
        db["backups"].add_column(column, str)
    db["backups"].add_column("accepted_at", float)


STEPS = (
    v6_databases,
    v7_backups,
    v8_backup_watch,
    v17_env_attachments,
    v23_backup_places,
)
