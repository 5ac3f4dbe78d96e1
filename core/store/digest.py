"""The daily digest's posts and the drift watcher's open findings (``core.watch.digest``,
``core.watch.drift``), and the reads over deployments they need."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.store.connection import Connection

DRIFT_COLUMNS = ("key", "server", "app", "env", "kind", "detail")


class DigestTables(Connection):
    def changes_running(self) -> list[tuple[str, str]]:
        """(app, env) of every deployment, scale or restart still running."""
        return [
            (app, env)
            for app, env in self._query(
                "SELECT DISTINCT app, env FROM deployments WHERE status = 'running'"
            )
        ]

    def deployments_between(self, start: float, end: float) -> list[dict[str, Any]]:
        """Every change that finished in (start, end], oldest first."""
        return self._rows(
            "deployments", "finished_at > ? AND finished_at <= ?", [start, end], order_by="id"
        )

    def backups_between(self, start: float, end: float) -> list[dict[str, Any]]:
        """Every backup run that finished in (start, end], oldest first."""
        return self._rows(
            "backups", "finished_at > ? AND finished_at <= ?", [start, end], order_by="id"
        )

    def backup_names(self) -> list[str]:
        """Every database that has had a backup run, managed or not."""
        return [name for (name,) in self._query("SELECT DISTINCT database FROM backups")]

    def digest_posted(
        self, platform: str, channel: str, fired_at: float, post: Callable[[], int]
    ) -> bool:
        """Record the digest of ``fired_at`` for the channel and run ``post`` (which queues
        it in the outbox and returns its id) in one transaction; False, posting nothing,
        when that digest was already posted."""
        with self._write() as db:
            seen = db.execute(
                "SELECT 1 FROM digest_posts WHERE platform = ? AND channel = ? AND fired_at = ?",
                [platform, channel, fired_at],
            ).fetchone()
            if seen:
                return False
            outbox_id = post()
            db["digest_posts"].insert(
                {
                    "platform": platform,
                    "channel": channel,
                    "fired_at": fired_at,
                    "outbox_id": outbox_id,
                }
            )
            return True

    def drift_states(self) -> list[dict[str, Any]]:
        return [
            {key: row[key] for key in DRIFT_COLUMNS}
            for row in self._rows("drift_watch", order_by="key")
        ]

    def save_drift_states(
        self, rows: list[dict[str, Any]], inside: Callable[[], None] = lambda: None
    ) -> None:
        """Replace the open findings with ``rows`` and run ``inside`` (which queues the
        posts) in the same transaction."""
        with self._write() as db:
            db.execute("DELETE FROM drift_watch")
            if rows:
                db["drift_watch"].insert_all({k: row[k] for k in DRIFT_COLUMNS} for row in rows)
            inside()
