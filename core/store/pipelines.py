"""Git webhooks' secrets and forge tokens, and the preview environments (``core.pipelines``).

Secrets and tokens are stored as the vault encrypted them; this module never sees them in
clear. A preview's row lives from its pull request's first event until its teardown.
"""

from __future__ import annotations

from typing import Any

from core.store.connection import Connection

PREVIEW_COLUMNS = (
    "app",
    "number",
    "env",
    "forge",
    "repository",
    "head_sha",
    "head_ref",
    "author",
    "title",
    "domain",
    "volumes",
    "status",
)


class PipelinesTable(Connection):
    def set_webhook(self, app: str, *, user: str, **sealed: str | None) -> None:
        """Set the app's ``secret`` or ``forge_token`` (sealed by the vault); the other stays."""
        with self._write() as db:
            row = {"app": app, "set_by": user, "set_at": self.clock.time(), **sealed}
            db["webhooks"].upsert(row, pk="app")

    def webhook(self, app: str) -> dict[str, Any] | None:
        rows = self._rows("webhooks", "app = ?", [app])
        return rows[0] if rows else None

    def save_preview(self, row: dict[str, Any]) -> None:
        """Insert or update the preview of ``row['app']`` #``row['number']``."""
        now = self.clock.time()
        with self._write() as db:
            values = {key: row[key] for key in PREVIEW_COLUMNS if key in row}
            found = db["previews"].count_where(
                "app = ? AND number = ?", [row["app"], row["number"]]
            )
            if found:
                db["previews"].update((row["app"], row["number"]), {**values, "updated_at": now})
            else:
                db["previews"].insert({**values, "opened_at": now, "updated_at": now})

    def claim_preview(
        self, app: str, number: int, limits: tuple[int, int], changes: dict[str, Any]
    ) -> tuple[int, int]:
        """Mark the preview deploying with ``changes`` when fewer than ``limits`` (all apps,
        this app) others are live or deploying, in one transaction (two pull requests cannot
        both take the last slot); else mark it refused. Returns how many others there are,
        of all apps and of this one."""
        with self._write() as db:
            others, mine = db.execute(
                "SELECT count(*), coalesce(sum(app = ?), 0) FROM previews "
                "WHERE status IN ('live', 'deploying') AND NOT (app = ? AND number = ?)",
                [app, app, number],
            ).fetchone()
            fits = others < limits[0] and mine < limits[1]
            status = {**changes, "status": "deploying"} if fits else {"status": "refused"}
            db["previews"].update((app, number), {**status, "updated_at": self.clock.time()})
            return others, mine

    def preview(self, app: str, number: int) -> dict[str, Any] | None:
        rows = self._rows("previews", "app = ? AND number = ?", [app, number])
        return rows[0] if rows else None

    def previews(self, app: str | None = None) -> list[dict[str, Any]]:
        where, args = ("app = ?", [app]) if app else (None, None)
        return self._rows("previews", where, args, order_by="app, number")

    def forget_environment(self, app: str, env: str) -> dict[str, int]:
        """Delete the rows an environment left (releases, deployments, variables, certificate
        watch, its preview); how many of each went. The audit keeps its history."""
        gone: dict[str, int] = {}
        with self._write() as db:
            for table in ("releases", "deployments", "variables", "cert_watch", "previews"):
                sql = f"DELETE FROM {table} WHERE app = ? AND env = ?"  # noqa: S608 (fixed names)
                gone[table] = db.execute(sql, [app, env]).rowcount
        return gone
