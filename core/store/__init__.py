"""The control plane's only state: one SQLite file in WAL mode, with named migrations.

Swarm is the source of truth for what runs; this file remembers what was asked, by whom,
and which releases exist to roll back to. Tables are reached only through ``Store``'s
methods, which live in one module per concern and share one connection.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.clock import SYSTEM, Clock
from core.store.alerts import AlertsTable
from core.store.apps import AppsTable
from core.store.audit import AuditLog
from core.store.backup_watch import BackupWatchTable
from core.store.backups import BackupsTable
from core.store.certs import CertWatchTable
from core.store.connection import StoreBusy
from core.store.databases import DatabasesTable
from core.store.deliveries import DeliveriesTable
from core.store.digest import DigestTables
from core.store.domains import DomainGrantsTable
from core.store.governance import GovernanceTables
from core.store.identity import IdentityTable
from core.store.links import LinksTable
from core.store.migrations import MIGRATIONS, Migrations, migrate, needs_migration, schema_version
from core.store.models import (
    RELEASE_DEPLOYING,
    RELEASE_FAILED,
    RELEASE_LIVE,
    RELEASE_STATUSES,
    RELEASE_SUPERSEDED,
    RELEASE_UNKNOWN,
    App,
    Release,
)
from core.store.outbox import MAX_ATTEMPTS, OutboxTable
from core.store.pipelines import PipelinesTable
from core.store.policies import PoliciesTable
from core.store.registry import RegistryTables
from core.store.releases import ReleasesTable
from core.store.removal import RemovalTables
from core.store.servers import ServersTable

__all__ = [
    "DB_FILE",
    "DEFAULT_BUSY_TIMEOUT",
    "MAX_ATTEMPTS",
    "MIGRATIONS",
    "RELEASE_DEPLOYING",
    "RELEASE_FAILED",
    "RELEASE_LIVE",
    "RELEASE_STATUSES",
    "RELEASE_SUPERSEDED",
    "RELEASE_UNKNOWN",
    "App",
    "Release",
    "Store",
    "StoreBusy",
    "shipbot_home",
]

DB_FILE = "shipbot.db"
DEFAULT_BUSY_TIMEOUT = 5.0


def shipbot_home() -> Path:
    """``$SHIPBOT_HOME``, default ``~/.local/share/shipbot``; created with mode 0700."""
    home = Path(os.environ.get("SHIPBOT_HOME") or Path.home() / ".local/share/shipbot")
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    return home


class Store(
    AppsTable,
    ReleasesTable,
    GovernanceTables,
    IdentityTable,
    OutboxTable,
    CertWatchTable,
    DatabasesTable,
    BackupsTable,
    BackupWatchTable,
    PipelinesTable,
    DeliveriesTable,
    AlertsTable,
    ServersTable,
    AuditLog,
    DigestTables,
    RegistryTables,
    DomainGrantsTable,
    PoliciesTable,
    LinksTable,
    RemovalTables,
):
    """The state file, opened and migrated; ``busy_timeout`` is how long a write waits for
    another process's lock before ``StoreBusy``."""

    def __init__(
        self,
        path: Path | None = None,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        clock: Clock = SYSTEM,
    ) -> None:
        super().__init__(path or shipbot_home() / DB_FILE, busy_timeout, clock)
        try:
            with self._lock, self._busy():
                pending = needs_migration(self.db)
            if pending:
                with self._write() as db:
                    migrate(db)
        except BaseException:
            self.db.conn.close()
            raise

    def apply(self, migrations: Migrations) -> None:
        """A capability's own migration set (rooms/capability.py), each step once, in order."""
        with self._write() as db:
            migrations.apply(db)

    @property
    def schema_version(self) -> int:
        """How many of the ``shipbot`` migrations are applied."""
        with self._lock, self._busy():
            return schema_version(self.db)

    def close(self) -> None:
        # under the lock: a worker thread still inside a write (a watcher's round that its
        # cancelled task left running) finishes first; closing under it crashes SQLite
        with self._lock:
            self._close_audit()
            self.db.conn.close()
