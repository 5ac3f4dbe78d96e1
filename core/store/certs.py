"""What the certificate watcher last saw and said per domain (``core.watch.certs``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.store.connection import Connection


class CertWatchTable(Connection):
    def cert_states(self) -> list[dict[str, Any]]:
        return [
            {key: row[key] for key in CERT_COLUMNS}
            for row in self._rows("cert_watch", order_by="domain")
        ]

    def save_cert_states(
        self, rows: list[dict[str, Any]], inside: Callable[[], None] = lambda: None
    ) -> None:
        """Replace every domain's state with ``rows``, and run ``inside`` (which queues the
        posts in the outbox) in the same transaction."""
        with self._write() as db:
            db.execute("DELETE FROM cert_watch")
            if rows:
                db["cert_watch"].insert_all({key: row[key] for key in CERT_COLUMNS} for row in rows)
            inside()


CERT_COLUMNS = ("domain", "app", "env", "serial", "not_after", "alert", "error")
