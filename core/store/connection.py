"""The one SQLite connection behind the store: private file modes, busy timeout, transactions.

Every table module reaches the database through ``_write`` (a transaction) and ``_rows`` /
``_scalar`` (reads), so a busy file always surfaces as ``StoreBusy`` and no two threads of
one process interleave on the connection.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.clock import SYSTEM, Clock
from core.errors import CoreError
from core.store.sql import Database

PRIVATE_FILE = 0o600
# SQLite's companions of a WAL database; it creates them with the database file's mode
COMPANIONS = ("", "-wal", "-shm")


class StoreBusy(CoreError):
    """Another process held the state file's write lock for longer than the busy timeout."""


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        # extended codes such as SQLITE_BUSY_SNAPSHOT keep the primary code in the low byte
        return code & 0xFF == sqlite3.SQLITE_BUSY
    return "database is locked" in str(exc)


class Connection:
    """Opens ``path`` with mode 0600 in WAL mode; subclasses add the tables' methods."""

    def __init__(self, path: Path, busy_timeout: float, clock: Clock = SYSTEM) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self.clock = clock  # every row's timestamp is this clock's time (core/clock.py)
        # one connection shared by worker threads: the lock keeps each transaction whole
        self._lock = threading.RLock()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # the umask covers the files SQLite creates now; chmod covers a database (and
        # companions) made before this rule, or by a tool with a looser umask
        previous = os.umask(0o077)
        try:
            # autocommit is Database's to set (core/store/sql.py): BEGIN only where _write says
            conn = sqlite3.connect(path, check_same_thread=False, timeout=busy_timeout)
            try:
                self.db = Database(conn)
                with self._busy():
                    self.db.enable_wal()
                    # the first read of a WAL database creates -wal and -shm under this umask
                    self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except BaseException:
                conn.close()
                raise
        finally:
            os.umask(previous)
        for suffix in COMPANIONS:
            with contextlib.suppress(FileNotFoundError):
                os.chmod(f"{path}{suffix}", PRIVATE_FILE)

    @contextlib.contextmanager
    def _busy(self) -> Iterator[None]:
        """Turn SQLite's "database is locked" into a message a person can act on."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                raise
            raise StoreBusy(
                f"the state file {self.path} is locked by another shipbot process "
                f"(waited {self.busy_timeout:g}s); try again in a moment"
            ) from exc

    @contextlib.contextmanager
    def _write(self) -> Iterator[Database]:
        """One transaction: all of the block's changes are committed, or none.

        The outermost block starts with BEGIN IMMEDIATE, taking the write lock before the
        first read: a deferred transaction that reads and then writes in WAL mode fails at
        once with SQLITE_BUSY (no busy wait) when another process wrote in between, and a
        read-then-write such as a compare-and-set must see the rows it is about to change.
        Nested blocks become savepoints through ``Database.atomic()`` (core/store/sql.py).
        """
        with self._lock, self._busy():
            if self.db.conn.in_transaction:
                with self.db.atomic():
                    yield self.db
                return
            self.db.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.rollback()
                raise
            try:
                self.db.conn.execute("COMMIT")
            except BaseException:
                self.db.rollback()
                raise

    def _rows(
        self, table: str, where: str | None = None, args: list[Any] | None = None, **options: Any
    ) -> list[dict[str, Any]]:
        with self._lock, self._busy():
            return list(self.db[table].rows_where(where, args, **options))

    def _scalar(self, sql: str, args: list[Any] | None = None) -> Any:
        with self._lock, self._busy():
            return self.db.execute(sql, args or []).fetchone()[0]

    def _query(self, sql: str, args: list[Any] | None = None) -> list[tuple[Any, ...]]:
        with self._lock, self._busy():
            return self.db.execute(sql, args or []).fetchall()
