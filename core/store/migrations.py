"""Named migrations (``Migrations``, recorded as sqlite-utils' migrations recorded them) and
the schema's history as the set ``shipbot``.

Each applied migration has its row in ``_sqlite_migrations``. Databases made before that
counted their migrations in ``PRAGMA user_version`` alone; ``migrate`` records those as
applied and runs the rest. ``user_version`` is still kept equal to the number applied, so
an older shipbot opened on a newer file finds nothing left to do instead of re-creating
tables.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable

from core.store.schema import Step, history
from core.store.sql import Database


class Migrations:
    """A named set of steps, each applied once, in order, recorded by name."""

    migrations_table = "_sqlite_migrations"  # id, migration_set, name, applied_at

    def __init__(self, name: str) -> None:
        self.name = name
        self.steps: dict[str, Step] = {}

    def __call__(self) -> Callable[[Step], Step]:
        """``@migrations()``: the function is the next step, named by its name."""
        return self._register

    def _register(self, step: Step) -> Step:
        if step.__name__ in self.steps:
            raise ValueError(f"migration {step.__name__!r} is already in set {self.name!r}")
        self.steps[step.__name__] = step
        return step

    def applied(self, db: Database) -> list[str]:
        """The names of this set's applied steps, in the order they were applied."""
        table = db[self.migrations_table]
        if not table.exists():
            return []
        rows = table.rows_where("migration_set = ?", [self.name], order_by="rowid", select="name")
        return [row["name"] for row in rows]

    def pending(self, db: Database) -> list[str]:
        done = set(self.applied(db))
        return [name for name in self.steps if name not in done]

    def ensure_migrations_table(self, db: Database) -> None:
        table = db[self.migrations_table]
        if not table.exists():
            columns = {"id": int, "migration_set": str, "name": str, "applied_at": str}
            table.create(columns, pk="id")
            table.create_index(["migration_set", "name"], unique=True)

    def record(self, db: Database, names: Iterable[str]) -> None:
        now = str(dt.datetime.now(dt.UTC))
        rows = ({"migration_set": self.name, "name": n, "applied_at": now} for n in names)
        db[self.migrations_table].insert_all(rows)

    def apply(self, db: Database) -> None:
        """Each pending step with the record of it, in one savepoint per step."""
        self.ensure_migrations_table(db)
        done = set(self.applied(db))
        for name, step in self.steps.items():
            if name not in done:
                with db.atomic():
                    step(db)
                    self.record(db, [name])


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
