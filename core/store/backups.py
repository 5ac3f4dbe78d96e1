"""Backups of databases: one row per run, where its object went, and when retention
deleted it. A ``suspect`` backup (smaller than the shrink rule allows) is kept until an
admin accepts it (it becomes ``ok`` and the baseline) or retention removes it."""

from __future__ import annotations

from typing import Any

from core.store.connection import Connection

BACKUP_RUNNING = "running"
BACKUP_OK = "ok"
BACKUP_FAILED = "failed"
BACKUP_SUSPECT = "suspect"
BACKUP_INTERRUPTED = "interrupted"  # the process running it stopped (core/watch/sweep.py)
BACKUP_COLUMNS = (
    "id",
    "database",
    "kind",
    "key",
    "size",
    "raw_size",
    "sha256",
    "etag",
    "status",
    "error",
    "started_by",
    "started_at",
    "finished_at",
    "deleted_at",
    "endpoint",
    "bucket",
    "accepted_by",
    "accepted_at",
)


class BackupsTable(Connection):
    def start_backup(
        self,
        database: str,
        kind: str,
        key: str,
        by: str,
        at: float,
        endpoint: str | None = None,
        bucket: str | None = None,
    ) -> int:
        with self._write() as db:
            table = db["backups"].insert(
                {
                    "database": database,
                    "kind": kind,
                    "key": key,
                    "status": BACKUP_RUNNING,
                    "started_by": by,
                    "started_at": at,
                    "endpoint": endpoint,
                    "bucket": bucket,
                }
            )
            return int(table.last_pk)

    def record_failed_start(self, database: str, by: str, at: float, error: str) -> int:
        """A run that started and failed before anything was sent (database down, no such
        database): its row says so, so it is never taken for a run that did not start."""
        with self._write() as db:
            table = db["backups"].insert(
                {
                    "database": database,
                    "kind": "",
                    "key": "",
                    "status": BACKUP_FAILED,
                    "error": error,
                    "started_by": by,
                    "started_at": at,
                    "finished_at": at,
                }
            )
            return int(table.last_pk)

    def finish_backup(self, backup_id: int, status: str, at: float, **facts: Any) -> None:
        """``facts``: size, raw_size, sha256, etag, error."""
        unknown = set(facts) - {"size", "raw_size", "sha256", "etag", "error"}
        if unknown:
            raise ValueError(f"not a backup fact: {', '.join(sorted(unknown))}")
        with self._write() as db:
            db["backups"].update(backup_id, {"status": status, "finished_at": at, **facts})

    def running_backups(self) -> list[dict[str, Any]]:
        return self._rows("backups", "status = ?", [BACKUP_RUNNING], order_by="id")

    def interrupt_backups(self, database: str, at: float, why: str) -> list[int]:
        """``database``'s running backups, whose process stopped, marked interrupted."""
        with self._write() as db:
            rows = self._rows("backups", "database = ? AND status = ?", [database, BACKUP_RUNNING])
            for row in rows:
                db["backups"].update(
                    row["id"], {"status": BACKUP_INTERRUPTED, "finished_at": at, "error": why}
                )
            return [row["id"] for row in rows]

    def backup(self, backup_id: int) -> dict[str, Any] | None:
        rows = self._rows("backups", "id = ?", [backup_id])
        return rows[0] if rows else None

    def backups(self, database: str, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first, deleted ones included (they say when retention removed them)."""
        return self._rows("backups", "database = ?", [database], order_by="id DESC", limit=limit)

    def good_backups(self, database: str) -> list[dict[str, Any]]:
        """The verified backups whose objects are still kept, newest first."""
        return self._rows(
            "backups",
            "database = ? AND status = ? AND deleted_at IS NULL",
            [database, BACKUP_OK],
            order_by="id DESC",
        )

    def discarded_backups(self, database: str) -> list[dict[str, Any]]:
        """Failed and suspect backups older than the newest good one, not yet cleaned up:
        retention deletes their objects (a suspect one newer waits for ``backup accept``)."""
        good = self.good_backups(database)
        if not good:
            return []
        return self._rows(
            "backups",
            "database = ? AND status IN (?, ?) AND deleted_at IS NULL AND id < ?",
            [database, BACKUP_FAILED, BACKUP_SUSPECT, good[0]["id"]],
            order_by="id",
        )

    def accept_backup(self, backup_id: int, by: str, at: float) -> None:
        """A suspect backup becomes good, and so the baseline the next one is compared with."""
        with self._write() as db:
            db["backups"].update(
                backup_id, {"status": BACKUP_OK, "accepted_by": by, "accepted_at": at}
            )

    def mark_backups_deleted(self, ids: list[int], at: float) -> None:
        with self._write() as db:
            for backup_id in ids:
                db["backups"].update(backup_id, {"deleted_at": at})
