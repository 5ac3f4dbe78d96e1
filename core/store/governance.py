"""Who may do what: grants, approvals of guarded commands, deploy locks, per-app variables."""

from __future__ import annotations

import json
import os
from typing import Any

from core.store.connection import Connection


class GovernanceTables(Connection):
    # grants
    def add_grant(self, *, user: str, role: str, app: str, env: str, granted_by: str) -> bool:
        """False when the same grant already exists."""
        with self._write() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO grants (user, role, app, env, granted_by, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [user, role, app, env, granted_by, self.clock.time()],
            )
            return cursor.rowcount == 1

    def remove_grant(self, *, user: str, role: str, app: str, env: str) -> bool:
        with self._write() as db:
            cursor = db.execute(
                "DELETE FROM grants WHERE user = ? AND role = ? AND app = ? AND env = ?",
                [user, role, app, env],
            )
            return cursor.rowcount > 0

    def grants(self, user: str | None = None) -> list[dict[str, Any]]:
        where, args = ("user = ?", [user]) if user else (None, None)
        return self._rows("grants", where, args, order_by="user, role, app, env")

    # approvals
    def add_approval(self, row: dict[str, Any]) -> int:
        """A pending request; ``row`` may carry ``commit_sha``, ``digest``, ``request`` (JSON
        of the typed request) and ``break_glass`` beside the original columns."""
        with self._write() as db:
            return (
                db["approvals"]
                .insert({**row, "status": "pending", "approved_by": "[]", "decided_at": None})
                .last_pk
            )

    def approval(self, approval_id: int) -> dict[str, Any] | None:
        rows = self._rows("approvals", "id = ?", [approval_id])
        return rows[0] if rows else None

    def record_approval(self, approval_id: int, approvers: list[str], status: str) -> bool:
        """Add an approver while the request is still pending; False if someone got there first.

        The compare-and-set on the old approver list makes a double click count once.
        """
        with self._write() as db:
            row = self.approval(approval_id)
            if row is None or row["status"] != "pending":
                return False
            cursor = db.execute(
                "UPDATE approvals SET approved_by = ?, status = ?, decided_at = ? "
                "WHERE id = ? AND status = 'pending' AND approved_by = ?",
                [
                    json.dumps(approvers),
                    status,
                    self.clock.time() if status != "pending" else None,
                    approval_id,
                    row["approved_by"],
                ],
            )
            return cursor.rowcount == 1

    def decide_approval(self, approval_id: int, status: str, note: str = "") -> bool:
        """Move a pending request to ``status``; False if it was no longer pending."""
        with self._write() as db:
            cursor = db.execute(
                "UPDATE approvals SET status = ?, decided_at = ?, note = ? "
                "WHERE id = ? AND status = 'pending'",
                [status, self.clock.time(), note, approval_id],
            )
            return cursor.rowcount == 1

    def finish_approval(self, approval_id: int, status: str, note: str = "") -> None:
        with self._write() as db:
            db["approvals"].update(approval_id, {"status": status, "note": note})

    def due_approvals(self, now: float) -> list[dict[str, Any]]:
        return self._rows(
            "approvals", "status = 'pending' AND expires_at <= ?", [now], order_by="id"
        )

    # locks
    def acquire_lock(
        self, key: str, *, owner: str, what: str, ttl: float, host: str
    ) -> dict[str, Any] | None:
        """Take the lock, or return the row of whoever holds it (a stale holder loses it)."""
        with self._write() as db:
            now = self.clock.time()
            rows = self._rows("locks", "key = ?", [key])
            if rows and rows[0]["heartbeat_at"] > now - ttl:
                return rows[0]
            db["locks"].insert(
                {
                    "key": key,
                    "owner": owner,
                    "pid": os.getpid(),
                    "host": host,
                    "what": what,
                    "acquired_at": now,
                    "heartbeat_at": now,
                },
                replace=True,
            )
        return None

    def lock(self, key: str) -> dict[str, Any] | None:
        """Who holds ``key`` and when they last beat (None: nobody)."""
        rows = self._rows("locks", "key = ?", [key])
        return rows[0] if rows else None

    def heartbeat_lock(self, key: str, owner: str) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE locks SET heartbeat_at = ? WHERE key = ? AND owner = ? AND pid = ?",
                [self.clock.time(), key, owner, os.getpid()],
            )

    def release_lock(self, key: str, owner: str) -> None:
        with self._write() as db:
            db.execute(
                "DELETE FROM locks WHERE key = ? AND owner = ? AND pid = ?",
                [key, owner, os.getpid()],
            )

    def force_unlock(self, key: str) -> dict[str, Any] | None:
        with self._write() as db:
            rows = self._rows("locks", "key = ?", [key])
            db.execute("DELETE FROM locks WHERE key = ?", [key])
        return rows[0] if rows else None

    # variables (env and secrets)
    def set_variable(
        self, *, app: str, env: str, key: str, value: str, secret: bool, updated_by: str
    ) -> None:
        with self._write() as db:
            db["variables"].insert(
                {
                    "app": app,
                    "env": env,
                    "key": key,
                    "value": value,
                    "secret": int(secret),
                    "updated_by": updated_by,
                    "updated_at": self.clock.time(),
                },
                replace=True,
            )

    def unset_variable(self, *, app: str, env: str, key: str) -> bool:
        with self._write() as db:
            cursor = db.execute(
                "DELETE FROM variables WHERE app = ? AND env = ? AND key = ?", [app, env, key]
            )
            return cursor.rowcount > 0

    def variables(self, app: str | None = None, env: str | None = None) -> list[dict[str, Any]]:
        clauses, args = [], []
        for column, value in (("app", app), ("env", env)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        return self._rows(
            "variables", " AND ".join(clauses) or None, args or None, order_by="app, env, key"
        )
