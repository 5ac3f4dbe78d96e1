"""Managed databases and the app environments an admin attached each one to
(``core.data.databases``).

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
            db.execute("DELETE FROM database_attachments WHERE database = ?", [name])
            return db.execute("DELETE FROM databases WHERE name = ?", [name]).rowcount == 1

    def attach_database(self, name: str, app: str, env: str, by: str, at: float) -> bool:
        """Let ``app`` in ``env`` use database ``name``; False when it already may."""
        with self._write() as db:
            where = "database = ? AND app = ? AND env = ?"
            if db["database_attachments"].count_where(where, [name, app, env]):
                return False
            db["database_attachments"].insert(
                {"database": name, "app": app, "env": env, "attached_by": by, "attached_at": at}
            )
            return True

    def detach_database(self, name: str, app: str, env: str) -> bool:
        with self._write() as db:
            cursor = db.execute(
                "DELETE FROM database_attachments WHERE database = ? AND app = ? AND env = ?",
                [name, app, env],
            )
            return cursor.rowcount == 1

    def database_attachments(self, name: str) -> list[tuple[str, str]]:
        """The (app, environment) pairs database ``name`` is attached to."""
        rows = self._rows("database_attachments", "database = ?", [name], order_by="app, env")
        return [(row["app"], row["env"]) for row in rows]
