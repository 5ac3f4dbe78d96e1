"""Domain grants: which names and wildcards each app may route (``core.edge.grants``)."""

from __future__ import annotations

from typing import Any

from core.store.connection import Connection


class DomainGrantsTable(Connection):
    def add_domain_grant(
        self, *, app: str, pattern: str, env: str, granted_by: str
    ) -> tuple[bool, dict[str, Any] | None]:
        """(added, None), (False, None) when the app holds it already, or (False, the other
        app's grant of the same pattern): checked and written in one transaction."""
        with self._write() as db:
            taken = list(
                db["domain_grants"].rows_where(
                    "pattern = ? AND app != ?", [pattern, app], order_by="id", limit=1
                )
            )
            if taken:
                return False, taken[0]
            cursor = db.execute(
                "INSERT OR IGNORE INTO domain_grants (app, pattern, env, granted_by, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [app, pattern, env, granted_by, self.clock.time()],
            )
            return cursor.rowcount == 1, None

    def remove_domain_grant(self, *, app: str, pattern: str, env: str) -> bool:
        with self._write() as db:
            cursor = db.execute(
                "DELETE FROM domain_grants WHERE app = ? AND pattern = ? AND env = ?",
                [app, pattern, env],
            )
            return cursor.rowcount > 0

    def domain_grants(self, app: str | None = None) -> list[dict[str, Any]]:
        where, args = ("app = ?", [app]) if app else (None, None)
        return self._rows("domain_grants", where, args, order_by="app, pattern, env")
