"""The schema's history as sqlite-utils named migrations (the set ``shipbot``).

Each applied migration has its row in ``_sqlite_migrations``. Databases made before that
counted their migrations in ``PRAGMA user_version`` alone; ``migrate`` records those as
applied and runs the rest. ``user_version`` is still kept equal to the number applied, so
an older shipbot opened on a newer file finds nothing left to do instead of re-creating
tables.
"""

from __future__ import annotations

import datetime as dt

import sqlite_utils
from sqlite_utils.migrations import Migrations

from core.store.schema_foundations import (
    v1_core,
    v2_governance,
    v3_outbox,
    v4_requests_credentials_heartbeats,
    v5_cert_watch,
    v6_databases,
    v7_backups,
    v8_backup_watch,
    v9_servers,
)
from core.store.schema_operations import (
    v10_alerts,
    v11_pipelines,
    v12_digest,
    v13_images,
)
from core.store.schema_policy import (
    v14_policy,
    v16_domain_grants,
    v17_env_attachments,
    v18_deliveries,
    v20_networks,
    v21_truth,
    v22_identity,
    v23_backup_places,
)

MIGRATIONS = Migrations("shipbot")

# In order; the first three are the old ``user_version`` 1, 2 and 3.
HISTORY = (
    v1_core,
    v2_governance,
    v3_outbox,
    v4_requests_credentials_heartbeats,
    v5_cert_watch,
    v6_databases,
    v7_backups,
    v8_backup_watch,
    v9_servers,
    v10_alerts,
    v11_pipelines,
    v12_digest,
    v13_images,
    v14_policy,
    v16_domain_grants,
    v17_env_attachments,
    v18_deliveries,
    v20_networks,
    v21_truth,
    v22_identity,
    v23_backup_places,
)
for _step in HISTORY:
    MIGRATIONS()(_step)


def _user_version(db: sqlite_utils.Database) -> int:
    return db.execute("PRAGMA user_version").fetchone()[0]


def _unadopted(db: sqlite_utils.Database) -> int:
    """How many migrations ``user_version`` says were applied without a record of it."""
    return 0 if MIGRATIONS.applied(db) else _user_version(db)


def needs_migration(db: sqlite_utils.Database) -> bool:
    """Read-only: whether ``migrate`` has anything to do (so a plain start takes no lock)."""
    return bool(_unadopted(db) or MIGRATIONS.pending(db))


def migrate(db: sqlite_utils.Database) -> None:
    """Bring ``db`` to the newest schema; run it inside one write transaction, so a
    failure anywhere leaves the file as it was and a second process waits, then finds
    nothing to do."""
    adopted = _unadopted(db)
    if adopted:
        MIGRATIONS.ensure_migrations_table(db)
        now = str(dt.datetime.now(dt.UTC))
        db[MIGRATIONS.migrations_table].insert_all(
            {"migration_set": MIGRATIONS.name, "name": step.__name__, "applied_at": now}
            for step in HISTORY[:adopted]
        )
    MIGRATIONS.apply(db)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS.applied(db))}")


def schema_version(db: sqlite_utils.Database) -> int:
    """The number of this set's migrations applied to ``db``."""
    return len(MIGRATIONS.applied(db))
