"""The outbox: chat messages written first and delivered later, with retries, until they
are sent or, after ``max_attempts`` failures, set aside as dead letters for an operator."""

from __future__ import annotations

from typing import Any

from core.store.connection import Connection

MAX_ATTEMPTS = 8
OUTBOX_STATUSES = ("pending", "sent", "dead")


class OutboxTable(Connection):
    def enqueue(self, *, platform: str, channel: str, kind: str, payload: str) -> int:
        now = self.clock.time()
        with self._write() as db:
            return (
                db["outbox"]
                .insert(
                    {
                        "platform": platform,
                        "channel": channel,
                        "kind": kind,
                        "payload": payload,
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                        "sent_at": None,
                        "last_error": None,
                    }
                )
                .last_pk
            )

    def recent_messages(
        self, kind: str | None = None, after: int = 0, limit: int = 20
    ) -> list[dict[str, Any]]:
        """The newest ``limit`` notifications (of ``kind``) with an id above ``after``,
        oldest first."""
        where, args = "id > ?", [after]
        if kind is not None:
            where, args = where + " AND kind = ?", [*args, kind]
        rows = self._rows("outbox", where, args, order_by="id DESC", limit=limit)
        return list(reversed(rows))

    def due_messages(self, platform: str, now: float, limit: int = 20) -> list[dict[str, Any]]:
        return self._rows(
            "outbox",
            "platform = ? AND status = 'pending' AND next_attempt_at <= ?",
            [platform, now],
            order_by="id",
            limit=limit,
        )

    def mark_sent(self, message_id: int) -> None:
        with self._write() as db:
            db["outbox"].update(message_id, {"status": "sent", "sent_at": self.clock.time()})

    def mark_retry(
        self, message_id: int, error: str, delay: float, *, max_attempts: int = MAX_ATTEMPTS
    ) -> str:
        """Count a failed try: retry after ``delay`` seconds, or, at the ``max_attempts``-th
        failure, move the message to ``dead``. Returns its status now."""
        with self._write() as db:
            # in SQLite's UPDATE every right-hand side sees the row as it was
            db.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?, "
                "status = CASE WHEN attempts + 1 >= ? THEN 'dead' ELSE status END WHERE id = ?",
                [self.clock.time() + delay, error[:500], max_attempts, message_id],
            )
            return db.execute("SELECT status FROM outbox WHERE id = ?", [message_id]).fetchone()[0]

    def dead_letters(self, limit: int = 50) -> list[dict[str, Any]]:
        """Messages that will not be retried any more, newest first."""
        return self._rows("outbox", "status = 'dead'", order_by="id DESC", limit=limit)

    def requeue(self, message_id: int) -> bool:
        """A dead letter back to pending, due now, with its attempts reset; False if the
        message is not dead."""
        with self._write() as db:
            cursor = db.execute(
                "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ? "
                "WHERE id = ? AND status = 'dead'",
                [self.clock.time(), message_id],
            )
            return cursor.rowcount == 1

    def outbox_counts(self) -> dict[str, int]:
        """How many messages are in each status (every known status, zero included)."""
        counts = dict.fromkeys(OUTBOX_STATUSES, 0)
        counts.update(self._query("SELECT status, COUNT(*) FROM outbox GROUP BY status"))
        return counts
