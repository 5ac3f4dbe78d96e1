"""The control plane's own id: made once with its store, carried by every service it makes
(``shipbot.plane``), so planes sharing a swarm tell their services apart."""

from __future__ import annotations

import secrets

from core.store.connection import Connection


class IdentityTable(Connection):
    def plane_id(self) -> str:
        rows = self._rows("identity", "key = 'plane'")
        if rows:
            return rows[0]["value"]
        with self._write() as db:  # a store made before v22: its id is made now, once
            db.execute(
                "INSERT OR IGNORE INTO identity (key, value) VALUES ('plane', ?)",
                [secrets.token_hex(8)],
            )
        return self._rows("identity", "key = 'plane'")[0]["value"]
