"""Links between apps an admin granted (``link grant``): what lets an app's ``links:``
in app.yml take effect (core/deploy/links.py)."""

from __future__ import annotations

from typing import Any

from core.store.connection import Connection


class LinksTable(Connection):
    def grant_link(self, app: str, other: str, env: str, by: str, at: float) -> bool:
        """Let ``app`` reach ``other`` in ``env``; False when it already may."""
        with self._write() as db:
            key = [app, other, env]
            if db["links"].count_where("app = ? AND other = ? AND env = ?", key):
                return False
            db["links"].insert(
                {"app": app, "other": other, "env": env, "granted_by": by, "granted_at": at}
            )
            return True

    def revoke_link(self, app: str, other: str, env: str) -> bool:
        with self._write() as db:
            cursor = db.execute(
                "DELETE FROM links WHERE app = ? AND other = ? AND env = ?", [app, other, env]
            )
            return cursor.rowcount == 1

    def links(self, app: str) -> list[dict[str, Any]]:
        """The links granted to ``app``, from it to others, every environment."""
        return self._rows("links", "app = ?", [app], order_by="env, other")
