"""Remote servers, their pinned host keys, and the SSH login keys shipbot holds
(``core.servers``). Private keys are stored as the vault encrypted them."""

from __future__ import annotations

from typing import Any

from core.store.connection import Connection

SERVER_COLUMNS = (
    "name",
    "url",
    "key",
    "host_key_kind",
    "host_key",
    "role",
    "swarm",
    "added_by",
    "added_at",
)


class ServersTable(Connection):
    def add_server(self, row: dict[str, Any]) -> bool:
        """Record a server with its host key, all at once; False when the name is taken."""
        with self._write() as db:
            if db["servers"].count_where("name = ?", [row["name"]]):
                return False
            record = {key: row[key] for key in SERVER_COLUMNS}
            record["addresses"] = ",".join(row.get("addresses") or ())
            db["servers"].insert(record)
            return True

    def set_server_addresses(self, name: str, addresses: list[str]) -> bool:
        """Replace a server's public addresses; False when there is no such server."""
        with self._write() as db:
            cursor = db.execute(
                "UPDATE servers SET addresses = ? WHERE name = ?", [",".join(addresses), name]
            )
            return cursor.rowcount == 1

    def server_addresses(self, name: str) -> list[str]:
        """A server's recorded public addresses, in the order given ([] when none)."""
        row = self.server(name)
        return [a for a in (row or {}).get("addresses", "").split(",") if a]

    def server(self, name: str) -> dict[str, Any] | None:
        rows = self._rows("servers", "name = ?", [name])
        return rows[0] if rows else None

    def servers(self, swarm: str | None = None) -> list[dict[str, Any]]:
        if swarm is None:
            return self._rows("servers", order_by="name")
        return self._rows("servers", "swarm = ?", [swarm], order_by="name")

    def trust_host_key(self, name: str, kind: str, blob: str, was: str) -> bool:
        """Replace a server's pinned key, only if it still is ``was`` (no lost update)."""
        with self._write() as db:
            cursor = db.execute(
                "UPDATE servers SET host_key_kind = ?, host_key = ? "
                "WHERE name = ? AND host_key = ?",
                [kind, blob, name, was],
            )
            return cursor.rowcount == 1

    def record_outage(self, server: str, since: float, error: str, tried: float) -> None:
        """``server`` did not answer at ``tried`` (its outage began at ``since``)."""
        row = {"server": server, "since": since, "error": error, "tried": tried}
        with self._write() as db:
            db["server_outages"].upsert(row, pk="server")

    def server_outage(self, server: str) -> dict[str, Any] | None:
        rows = self._rows("server_outages", "server = ?", [server])
        return rows[0] if rows else None

    def clear_outage(self, server: str) -> None:
        """``server`` answered (or is gone): no outage to tell (a read when there is none)."""
        if self.server_outage(server) is None:
            return
        with self._write() as db:
            db.execute("DELETE FROM server_outages WHERE server = ?", [server])

    def remove_server(self, name: str) -> bool:
        with self._write() as db:
            return db.execute("DELETE FROM servers WHERE name = ?", [name]).rowcount == 1

    def add_ssh_key(self, name: str, private: str, public: str, by: str, at: float) -> bool:
        """Store an encrypted private key under ``name``; False when the name is taken."""
        with self._write() as db:
            if db["ssh_keys"].count_where("name = ?", [name]):
                return False
            db["ssh_keys"].insert(
                {
                    "name": name,
                    "private": private,
                    "public": public,
                    "created_by": by,
                    "created_at": at,
                }
            )
            return True

    def ssh_key(self, name: str) -> dict[str, Any] | None:
        rows = self._rows("ssh_keys", "name = ?", [name])
        return rows[0] if rows else None

    def ssh_keys(self) -> list[dict[str, Any]]:
        return self._rows("ssh_keys", order_by="name")

    def set_env_server(self, app: str, env: str, server: str, at: float) -> None:
        with self._write() as db:
            db["env_servers"].upsert(
                {"app": app, "env": env, "server": server, "since": at}, pk=("app", "env")
            )

    def env_server(self, app: str, env: str) -> str | None:
        rows = self._rows("env_servers", "app = ? AND env = ?", [app, env])
        return rows[0]["server"] if rows else None

    def envs_on(self, server: str) -> list[tuple[str, str]]:
        """The (app, env) pairs last deployed to ``server``."""
        rows = self._rows("env_servers", "server = ?", [server], order_by="app, env")
        return [(row["app"], row["env"]) for row in rows]

    def env_server_rows(self) -> list[tuple[str, str, str]]:
        """(app, env, server) for every app environment deployed to a named server."""
        return [(r["app"], r["env"], r["server"]) for r in self._rows("env_servers")]

    def env_servers(self) -> set[str]:
        """Every server some app environment was deployed to."""
        return {row["server"] for row in self._rows("env_servers")}
