"""Registry logins (per app or host-wide) and CI tokens (hashed): what outside CI uses."""

from __future__ import annotations

from typing import Any

from core.store.connection import Connection


class RegistryTables(Connection):
    # registry logins; ``secret`` is the password encrypted by the vault
    def set_registry_login(
        self, *, app: str, registry: str, username: str, secret: str, set_by: str
    ) -> None:
        with self._write() as db:
            db["registry_logins"].upsert(
                {
                    "app": app,
                    "registry": registry,
                    "username": username,
                    "secret": secret,
                    "set_by": set_by,
                    "updated_at": self.clock.time(),
                },
                pk=("app", "registry"),
            )

    def registry_login(self, app: str, registry: str) -> dict[str, Any] | None:
        rows = self._rows("registry_logins", "app = ? AND registry = ?", [app, registry])
        return rows[0] if rows else None

    def registry_logins(self) -> list[dict[str, Any]]:
        """Who logs in where (never the secrets)."""
        rows = self._rows("registry_logins", order_by="registry, app")
        return [{k: v for k, v in row.items() if k != "secret"} for row in rows]

    def registry_logins_with_secrets(self) -> list[dict[str, Any]]:
        return self._rows("registry_logins", order_by="registry, app")

    def remove_registry_login(self, app: str, registry: str) -> bool:
        with self._write() as db:
            cursor = db.execute(
                "DELETE FROM registry_logins WHERE app = ? AND registry = ?", [app, registry]
            )
            return cursor.rowcount > 0

    # CI tokens; ``token_hash`` is a keyed digest of the whole token
    def add_ci_token(
        self, *, name: str, app: str, token_hash: str, created_by: str, owner: str
    ) -> bool:
        """False when a token of that name exists (revoke it first). ``owner``: the person
        behind the token's deploys, who may not approve them."""
        with self._write() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO ci_tokens "
                "(name, app, token_hash, created_by, created_at, owner) VALUES (?, ?, ?, ?, ?, ?)",
                [name, app, token_hash, created_by, self.clock.time(), owner],
            )
            return cursor.rowcount == 1

    def ci_token(self, name: str) -> dict[str, Any] | None:
        rows = self._rows("ci_tokens", "name = ?", [name])
        return rows[0] if rows else None

    def ci_tokens(self) -> list[dict[str, Any]]:
        rows = self._rows("ci_tokens", order_by="name")
        return [{k: v for k, v in row.items() if k != "token_hash"} for row in rows]

    def remove_ci_token(self, name: str) -> bool:
        with self._write() as db:
            return db.execute("DELETE FROM ci_tokens WHERE name = ?", [name]).rowcount > 0

    def touch_ci_token(self, name: str) -> None:
        with self._write() as db:
            db.execute("UPDATE ci_tokens SET used_at = ? WHERE name = ?", [self.clock.time(), name])
