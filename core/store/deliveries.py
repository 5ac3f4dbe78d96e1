"""Webhook deliveries already handled, and the forge logins linked to chat users
(``commands.hooks``, ``commands.four_eyes``).

A delivery is known by its forge's delivery id and by the digest of its signed body, so a
replay is found even when its unsigned delivery header was changed. Each row keeps the
commit it named and who pushed it, for the four-eyes check of that commit's approvals.
"""

from __future__ import annotations

import json
from typing import Any

from core.store.connection import Connection


class DeliveriesTable(Connection):
    def record_delivery(self, row: dict[str, Any], *, forget_before: float) -> bool:
        """Keep ``row`` unless its delivery id or body was handled already (False then);
        rows received before ``forget_before`` go first."""
        pushed_by = json.dumps(sorted(row.get("pushed_by") or ()))
        with self._write() as db:
            db.execute("DELETE FROM deliveries WHERE received_at < ?", [forget_before])
            cursor = db.execute(
                "INSERT OR IGNORE INTO deliveries (key, forge, delivery, body_digest, app, "
                "commit_sha, pushed_by, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    f"{row['forge']}:{row['delivery']}",
                    row["forge"],
                    row["delivery"],
                    row["body_digest"],
                    row.get("app"),
                    row.get("commit_sha"),
                    pushed_by,
                    row["received_at"],
                ],
            )
            return cursor.rowcount == 1

    def pushers(self, commit: str) -> set[str]:
        """The forge logins (``github:alice``) that pushed ``commit``, as deliveries said."""
        rows = self._rows("deliveries", "commit_sha = ?", [commit])
        return {login for row in rows for login in json.loads(row["pushed_by"] or "[]")}

    def link_person(self, user: str, login: str, *, by: str) -> bool:
        """Link a chat user to a forge login; False when linked already."""
        with self._write() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO people (user, login, added_by, added_at) "
                "VALUES (?, ?, ?, ?)",
                [user, login.lower(), by, self.clock.time()],
            )
            return cursor.rowcount == 1

    def unlink_person(self, user: str, login: str) -> bool:
        with self._write() as db:
            cursor = db.execute(
                "DELETE FROM people WHERE user = ? AND login = ?", [user, login.lower()]
            )
            return cursor.rowcount > 0

    def people(self) -> list[dict[str, Any]]:
        return self._rows("people", order_by="user, login")

    def logins_of(self, user: str) -> set[str]:
        return {row["login"] for row in self._rows("people", "user = ?", [user])}
