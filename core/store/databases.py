"""Managed databases and the apps an admin attached each one to (``core.data.databases``).

Credentials are stored as the vault encrypted them; this module never sees them in clear.
"""

from __future__ import annotations

from typing import Any

from core.store.connection import Connection

DATABASE_COLUMNS = (
    "name",
    "kind",
    "version",
    "image",
    "server",
    "credentials",
    "created_by",
    "created_at",
)


class DatabasesTable(Connection):
    def add_database(self, row: dict[str, Any]) -> bool:
        """Record a database; False when the name is taken."""
        with self._write() as db:
            if db["databases"].count_where("name = ?", [row["name"]]):
                return False
            db["databases"].insert({key: row[key] for key in DATABASE_COLUMNS})
            return True

    def database(self, name: str) -> dict[str, Any] | None:
        rows = self._rows("databases", "name = ?", [name])
        return rows[0] if rows else None

    def databases(self) -> list[dict[str, Any]]:
        return self._rows("databases", order_by="name")

    def remove_database(self, name: str) -> bool:
        """Forget a database and its attachments; False if there was none."""
        with self._write() as db:
            db.execute("DELETE FROM database_apps WHERE database = ?", [name])
            return db.execute("DELETE FROM databases WHERE name = ?", [name]).rowcount == 1

    def attach_database(self, name: str, app: str, by: str, at: float) -> bool:
        """Let ``app`` use database ``name``; False when it already may."""
        with self._write() as db:
            if db["database_apps"].count_where("database = ? AND app = ?", [name, app]):
                return False
            db["database_apps"].insert(
                {"database": name, "app": app, "attached_by": by, "attached_at": at}
            )
            return True

    def detach_database(self, name: str, app: str) -> bool:
        with self._write() as db:
            cursor = db.execute(
                "DELETE FROM database_apps WHERE database = ? AND app = ?", [name, app]
            )
            return cursor.rowcount == 1

    def database_apps(self, name: str) -> list[str]:
        """The apps attached to database ``name``."""
        rows = self._rows("database_apps", "database = ?", [name], order_by="app")
        return [row["app"] for row in rows]

    def attachments(self) -> dict[str, list[str]]:
        """Every database's attached apps (databases with none are absent)."""
        out: dict[str, list[str]] = {}
        for row in self._rows("database_apps", order_by="database, app"):
            out.setdefault(row["database"], []).append(row["app"])
        return out
