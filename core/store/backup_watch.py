"""The backup watcher's standing alerts per database (``core.watch.backups``) and the
results of ``backup verify`` (``core.data.verify``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from core.store.connection import Connection

WATCH_COLUMNS = ("database", "since", "missed", "stale")


class BackupWatchTable(Connection):
    def backup_watch_states(self) -> list[dict[str, Any]]:
        return [
            {key: row[key] for key in WATCH_COLUMNS}
            for row in self._rows("backup_watch", order_by="database")
        ]

    def save_backup_watch(
        self, rows: list[dict[str, Any]], inside: Callable[[], None] = lambda: None
    ) -> None:
        """Replace every database's state with ``rows`` and run ``inside`` (which queues the
        posts in the outbox) in the same transaction."""
        with self._write() as db:
            db.execute("DELETE FROM backup_watch")
            if rows:
                db["backup_watch"].insert_all({k: row[k] for k in WATCH_COLUMNS} for row in rows)
            inside()

    def record_verify(
        self,
        *,
        database: str,
        backup_id: int | None,
        ok: bool,
        detail: str,
        counts: dict[str, int],
        by: str,
        started_at: float,
        finished_at: float,
    ) -> int:
        with self._write() as db:
            table = db["backup_verifies"].insert(
                {
                    "database": database,
                    "backup_id": backup_id,
                    "ok": int(ok),
                    "detail": detail,
                    "counts": json.dumps(counts, sort_keys=True),
                    "started_by": by,
                    "started_at": started_at,
                    "finished_at": finished_at,
                }
            )
            return int(table.last_pk)

    def verifies(self, database: str, limit: int = 20) -> list[dict[str, Any]]:
        """Newest first."""
        return self._rows(
            "backup_verifies", "database = ?", [database], order_by="id DESC", limit=limit
        )

    def last_backup_started(self, database: str) -> float | None:
        """When the newest backup of ``database`` (any outcome) started."""
        rows = self._rows("backups", "database = ?", [database], order_by="id DESC", limit=1)
        return rows[0]["started_at"] if rows else None
