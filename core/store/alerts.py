"""The alert watcher's standing alerts and event cursor per server (``core.watch.alerts``),
and the guard windows after deploys (``core.watch.guard``).

An alert row is ``pending`` while a condition is seen but not yet alerted (under its
threshold, or an OOM noted from the event stream), ``open`` once posted, and ``closed``
by the recovery post. State changes are written in the transaction that queues the posts.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from core.store.connection import Connection

ALERT_COLUMNS = (
    "key",
    "server",
    "kind",
    "subject",
    "app",
    "env",
    "status",
    "first_seen",
    "last_seen",
    "opened_at",
    "closed_at",
    "detail",
)
GUARD_WATCHING = "watching"
GUARD_ROLLING_BACK = "rolling_back"
GUARD_DONE = ("passed", "rolled_back", "superseded", "failed", "unwatched")


class AlertsTable(Connection):
    # standing alerts
    def alert_states(self, server: str) -> list[dict[str, Any]]:
        """The server's alerts: pending, open, and closed (each key's last, with its time)."""
        return self._rows("alerts", "server = ?", [server], order_by="key")

    def open_alerts(self) -> list[dict[str, Any]]:
        """Every server's posted, not yet recovered alerts, oldest first."""
        return self._rows("alerts", "status = 'open'", order_by="opened_at")

    def save_alert_states(
        self, server: str, rows: list[dict[str, Any]], inside: Callable[[], None] = lambda: None
    ) -> None:
        """Replace the server's alerts with ``rows`` and run ``inside`` (which queues the
        posts) in one transaction."""
        with self._write() as db:
            db.execute("DELETE FROM alerts WHERE server = ?", [server])
            if rows:
                db["alerts"].upsert_all(
                    ({k: row.get(k) for k in ALERT_COLUMNS} for row in rows), pk="key"
                )
            inside()

    def put_alert(self, row: dict[str, Any], inside: Callable[[], None] = lambda: None) -> None:
        """One alert written as given (the guard opens its crash-loop alert so), with
        ``inside`` (its post) in the same transaction."""
        with self._write() as db:
            db["alerts"].upsert({k: row.get(k) for k in ALERT_COLUMNS}, pk="key")
            inside()

    def note_alert(
        self,
        *,
        key: str,
        server: str,
        kind: str,
        subject: str,
        app: str | None,
        env: str | None,
        at: float,
        detail: str,
    ) -> None:
        """A fact seen in the event stream (an OOM kill): a pending alert, or the open one's
        ``last_seen`` moved on. Written beside the cursor by ``advance_cursor``'s caller."""
        with self._write() as db:
            rows = list(db["alerts"].rows_where("key = ? AND status != 'closed'", [key]))
            if rows:
                db["alerts"].update(
                    key, {"last_seen": max(at, rows[0]["last_seen"] or 0), "detail": detail}
                )
                return
            db.execute("DELETE FROM alerts WHERE key = ?", [key])  # a closed one is history
            db["alerts"].insert(
                {
                    "key": key,
                    "server": server,
                    "kind": kind,
                    "subject": subject,
                    "app": app,
                    "env": env,
                    "status": "pending",
                    "first_seen": at,
                    "last_seen": at,
                    "opened_at": None,
                    "closed_at": None,
                    "detail": detail,
                }
            )

    # the event stream's position per server
    def alert_cursor(self, server: str) -> tuple[int, int] | None:
        """(the time of the last event read, in ns; how many were read in all)."""
        rows = self._rows("alert_cursors", "server = ?", [server])
        return (rows[0]["since_ns"], rows[0]["events"]) if rows else None

    def advance_cursor(
        self, server: str, since_ns: int, count: int, inside: Callable[[], None] = lambda: None
    ) -> None:
        """Move the server's cursor to ``since_ns`` (never back) after ``count`` more
        events, with ``inside`` (the events' notes) in the same transaction."""
        with self._write() as db:
            inside()
            rows = list(db["alert_cursors"].rows_where("server = ?", [server]))
            old = rows[0] if rows else {"since_ns": 0, "events": 0}
            db["alert_cursors"].upsert(
                {
                    "server": server,
                    "since_ns": max(since_ns, old["since_ns"] or 0),
                    "events": (old["events"] or 0) + count,
                },
                pk="server",
            )

    # guards
    def start_guard(
        self,
        *,
        server: str,
        app: str,
        env: str,
        release: int,
        service: str,
        seconds: float,
        platform: str | None,
        channel: str | None,
        now: float | None = None,
    ) -> int:
        """Watch ``release`` for ``seconds`` from ``now``; an older guard of the same app/env
        ends as superseded (a newer deploy owns the service now)."""
        now = self.clock.time() if now is None else now
        with self._write() as db:
            db.execute(
                "UPDATE guards SET status = 'superseded', finished_at = ?, "
                "reason = 'a newer release was deployed' "
                "WHERE app = ? AND env = ? AND server = ? AND status IN (?, ?)",
                [now, app, env, server, GUARD_WATCHING, GUARD_ROLLING_BACK],
            )
            return int(
                db["guards"]
                .insert(
                    {
                        "server": server,
                        "app": app,
                        "env": env,
                        "release": release,
                        "service": service,
                        "started_at": now,
                        "until": now + seconds,
                        "status": GUARD_WATCHING,
                        "platform": platform,
                        "channel": channel,
                        "reason": None,
                        "finished_at": None,
                    }
                )
                .last_pk
            )

    def note_guard_round(self, server: str, now: float) -> None:
        """A guard round of ``server`` ran now (``shipbot serve`` is watching it)."""
        with self._write() as db:
            db["guard_rounds"].upsert(
                {"server": server, "seen_at": now, "pid": os.getpid()}, pk="server"
            )

    def last_guard_round(self, server: str) -> float | None:
        rows = self._rows("guard_rounds", "server = ?", [server])
        return rows[0]["seen_at"] if rows else None

    def set_guard_anchor(
        self, *, platform: str, channel: str, app: str, env: str, release: int, anchor: str
    ) -> bool:
        """Remember the chat message that showed the deploy, so the guard's word on it
        edits that message and answers in its thread."""
        with self._write() as db:
            cursor = db.execute(
                "UPDATE guards SET anchor = ? WHERE platform = ? AND channel = ? AND app = ? "
                "AND env = ? AND release = ?",
                [anchor, platform, channel, app, env, release],
            )
            return cursor.rowcount > 0

    def active_guards(self, server: str) -> list[dict[str, Any]]:
        return self._rows(
            "guards",
            "server = ? AND status IN (?, ?)",
            [server, GUARD_WATCHING, GUARD_ROLLING_BACK],
            order_by="id",
        )

    def guard(self, guard_id: int) -> dict[str, Any]:
        return self._rows("guards", "id = ?", [guard_id])[0]

    def guards(self, app: str, env: str) -> list[dict[str, Any]]:
        """Newest first."""
        return self._rows("guards", "app = ? AND env = ?", [app, env], order_by="id DESC")

    def set_guard(
        self,
        guard_id: int,
        status: str,
        reason: str | None = None,
        inside: Callable[[], None] = lambda: None,
    ) -> bool:
        """Move an active guard to ``status`` with ``inside`` (its posts) in the same
        transaction; False (and nothing done) when it had already ended."""
        with self._write() as db:
            finished = self.clock.time() if status in GUARD_DONE else None
            cursor = db.execute(
                "UPDATE guards SET status = ?, reason = ?, finished_at = ? "
                "WHERE id = ? AND status IN (?, ?)",
                [status, reason, finished, guard_id, GUARD_WATCHING, GUARD_ROLLING_BACK],
            )
            if cursor.rowcount != 1:
                return False
            inside()
            return True
