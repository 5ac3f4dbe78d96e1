"""The audit log: who asked for what, where, and what came of it.

An audit row must not be lost because another process holds the state file: a row that
meets a busy file waits in memory and is written by the next ``audit`` or ``flush_audit``.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

from core.bounded import clip
from core.clock import SYSTEM, Clock
from core.store.connection import Connection, StoreBusy

log = logging.getLogger("shipbot.store")
# the command as typed and what came of it, each cut to this many characters: a row stays
# small whatever a command or an error quoted
AUDIT_TEXT = 1000


class AuditLog(Connection):
    def __init__(self, path: Path, busy_timeout: float, clock: Clock = SYSTEM) -> None:
        self._pending_audit: list[dict[str, Any]] = []
        super().__init__(path, busy_timeout, clock)

    def audit(
        self,
        *,
        user: str,
        channel: str,
        command: str,
        result: str,
        app: str | None = None,
        env: str | None = None,
        detail: str = "",
    ) -> None:
        """Record one command; never raises ``StoreBusy`` (the row waits in memory)."""
        row = {
            "ts": self.clock.time(),
            "user": user,
            "channel": channel,
            "command": clip(command, AUDIT_TEXT),
            "app": app,
            "env": env,
            "result": result,
            "detail": clip(detail, AUDIT_TEXT),
        }
        with self._lock:
            self._pending_audit.append(row)
            try:
                self.flush_audit()
            except StoreBusy as exc:
                log.warning(
                    "%d audit row(s) kept in memory until the state file is free: %s",
                    len(self._pending_audit),
                    exc,
                )
            except Exception:
                # a row the database refuses would block every later one
                self._pending_audit.remove(row)
                raise

    def flush_audit(self) -> int:
        """Write the rows that met a busy file, oldest first; returns how many were written.

        Raises ``StoreBusy`` (keeping them) if the file is still locked.
        """
        with self._lock:
            rows = list(self._pending_audit)
            if not rows:
                return 0
            with self._write() as db:
                db["audit"].insert_all(rows)
            del self._pending_audit[: len(rows)]
            return len(rows)

    @property
    def pending_audit(self) -> int:
        """How many audit rows wait for the state file."""
        return len(self._pending_audit)

    def audit_log(self, app: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        with contextlib.suppress(StoreBusy):
            self.flush_audit()
        where, args = ("app = ?", [app]) if app else (None, None)
        return self._rows("audit", where, args, order_by="id DESC", limit=limit)

    def _close_audit(self) -> None:
        try:
            self.flush_audit()
        except StoreBusy:
            for row in self._pending_audit:
                log.error("audit row not written, the state file stayed locked: %r", row)
