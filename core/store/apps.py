"""Registered apps: where each one's source is, and its git credential."""

from __future__ import annotations

from core.store.connection import Connection
from core.store.models import App


class AppsTable(Connection):
    def add_app(self, app: App) -> None:
        with self._write() as db:
            db["apps"].insert(app.__dict__, replace=True)

    def get_app(self, name: str) -> App | None:
        rows = self._rows("apps", "name = ?", [name])
        return App(**rows[0]) if rows else None

    def list_apps(self) -> list[App]:
        return [App(**row) for row in self._rows("apps", order_by="name")]

    def set_app_credential(self, name: str, value: str | None) -> bool:
        """Store (or with None, forget) the app's encrypted git credential; False if no app."""
        with self._write() as db:
            cursor = db.execute("UPDATE apps SET credential = ? WHERE name = ?", [value, name])
            return cursor.rowcount == 1
