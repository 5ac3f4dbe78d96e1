"""The schema's history as named migrations (core/store/sql.py) (the set ``shipbot``).

Each applied migration has its row in ``_sqlite_migrations``. Databases made before that
counted their migrations in ``PRAGMA user_version`` alone; ``migrate`` records those as
applied and runs the rest. ``user_version`` is still kept equal to the number applied, so
an older shipbot opened on a newer file finds nothing left to do instead of re-creating
tables.
"""

from __future__ import annotations

from core.store.schema import history
from core.store.sql import Database, Migrations

MIGRATIONS = Migrations("shipbot")

# In version order, from every room's module (core/store/schema/); the first three are the
# old ``user_version`` 1, 2 and 3.
HISTORY = history()
for _step in HISTORY:
    MIGRATIONS()(_step)


def _user_version(db: Database) -> int:
    return db.execute("PRAGMA user_version").fetchone()[0]


def _unadopted(db: Database) -> int:
    """How many migrations ``user_version`` says were applied without a record of it."""
    return 0 if MIGRATIONS.applied(db) else _user_version(db)


def needs_migration(db: Database) -> bool:
    """Read-only: whether ``migrate`` has anything to do (so a plain start takes no lock)."""
    return bool(_unadopted(db) or MIGRATIONS.pending(db))


def migrate(db: Database) -> None:
    """Bring ``db`` to the newest schema; run it inside one write transaction, so a
    failure anywhere leaves the file as it was and a second process waits, then finds
    nothing to do."""
    adopted = _unadopted(db)
    if adopted:
        MIGRATIONS.ensure_migrations_table(db)
        MIGRATIONS.record(db, [step.__name__ for step in HISTORY[:adopted]])
    MIGRATIONS.apply(db)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS.applied(db))}")


def schema_version(db: Database) -> int:
    """The number of this set's migrations applied to ``db``."""
    return len(MIGRATIONS.applied(db))
