"""The part of sqlite-utils the store used, on the standard library's ``sqlite3`` alone.

``db["table"]`` is a ``Table`` whose methods write what sqlite-utils 4 wrote (the same DDL
text, float → REAL, dicts and lists as JSON), so a state file made by either opens with
the other. Every value goes as a ``?`` parameter; names come from this program's code,
never from a request, and are quoted. The connection is in autocommit: ``BEGIN`` (the
store's ``_write``) and ``atomic`` are the only transactions.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

# Python type → the column type sqlite-utils 4 declared for it
COLUMN_TYPES = {str: "TEXT", int: "INTEGER", float: "REAL", bool: "INTEGER", bytes: "BLOB"}
Key = str | Sequence[str]  # a primary key's column, or columns


class NotFoundError(LookupError):
    """No row has that primary key (``Table.get``, ``update``, ``delete``)."""


def quote(identifier: str) -> str:
    """An identifier in double quotes, any quote inside doubled."""
    return '"' + identifier.replace('"', '""') + '"'


def _value(value: Any) -> Any:
    """What is stored for ``value``: dicts, lists and tuples as JSON text."""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=repr, ensure_ascii=False)
    return value


def _default(value: Any) -> str:
    """A DEFAULT clause's literal: a string quoted as SQL does, a number as it is."""
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, (bool, int, float)):
        return repr(int(value) if isinstance(value, bool) else value)
    raise TypeError(f"no SQL literal for a default of {value!r}")


def create_table_sql(
    name: str,
    columns: dict[str, type],
    pk: Key | None = None,
    *,
    not_null: Iterable[str] = (),
    defaults: dict[str, Any] | None = None,
    foreign_keys: Iterable[tuple[str, str, str]] = (),
    if_not_exists: bool = False,
) -> str:
    """``CREATE TABLE`` as sqlite-utils 4 wrote it; ``foreign_keys`` are
    ``(column, other_table, other_column)``."""
    not_null, defaults = set(not_null), defaults or {}
    references = {column: (table, other) for column, table, other in foreign_keys}
    unknown = (not_null | set(defaults) | set(references)) - set(columns)
    if unknown:
        raise ValueError(f"columns {sorted(unknown)} are not among {list(columns)}")
    pks = [pk] if isinstance(pk, str) else list(pk or ())
    single = pks[0] if len(pks) == 1 else None
    lines = []
    for column, kind in columns.items():
        extras = ["PRIMARY KEY"] if column == single else []
        if column in not_null:
            extras.append("NOT NULL")
        if defaults.get(column) is not None:
            extras.append(f"DEFAULT {_default(defaults[column])}")
        if column in references:
            table, other = references[column]
            extras.append(f"REFERENCES {quote(table)}({quote(other)})")
        lines.append(f"   {quote(column)} {COLUMN_TYPES[kind]}" + "".join(f" {e}" for e in extras))
    compound = f",\n   PRIMARY KEY ({', '.join(map(quote, pks))})" if len(pks) > 1 else ""
    exists = "IF NOT EXISTS " if if_not_exists else ""
    return f"CREATE TABLE {exists}{quote(name)} (\n" + ",\n".join(lines) + compound + "\n);"


class Database:
    """One ``sqlite3`` connection; ``db[name]`` is that table."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            raise ValueError("open the store's Database on a connection outside a transaction")
        conn.isolation_level = None  # autocommit: transactions only where BEGIN says
        self.conn = conn

    def __getitem__(self, name: str) -> Table:
        return Table(self, name)

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def table_names(self) -> list[str]:
        rows = self.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return [name for (name,) in rows]

    def enable_wal(self) -> None:
        if self.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            self.execute("PRAGMA journal_mode=wal")

    def rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    @contextlib.contextmanager
    def atomic(self) -> Iterator[Database]:
        """A transaction, or a savepoint inside one: all of the block or none of it."""
        begin, end, undo = "BEGIN", "COMMIT", ["ROLLBACK"]
        if self.conn.in_transaction:
            point = quote(f"sp_{secrets.token_hex(8)}")
            begin, end = f"SAVEPOINT {point}", f"RELEASE {point}"
            undo = [f"ROLLBACK TO {point}", end]
        self.execute(begin)
        try:
            yield self
            self.execute(end)
        except BaseException:
            if self.conn.in_transaction:  # an error may have ended the whole transaction
                for sql in undo:
                    self.execute(sql)
            raise


class Table:
    def __init__(self, db: Database, name: str) -> None:
        self.db, self.name = db, name
        self.last_pk: Any = None  # the rowid of the row one insert wrote

    def exists(self) -> bool:
        sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
        return self.db.execute(sql, [self.name]).fetchone() is not None

    @property
    def columns_dict(self) -> dict[str, str]:
        """Column name → declared type, in table order."""
        info = self.db.execute("SELECT name, type FROM pragma_table_info(?)", [self.name])
        return dict(info.fetchall())

    @property
    def pks(self) -> list[str]:
        """The primary key's columns in key order; ``["rowid"]`` for a table without one."""
        info = self.db.execute("SELECT name, pk FROM pragma_table_info(?)", [self.name])
        keyed = sorted((pk, name) for name, pk in info if pk)
        return [name for _, name in keyed] or ["rowid"]

    def create(self, columns: dict[str, type], pk: Key | None = None, **options: Any) -> Table:
        """``options``: ``not_null``, ``defaults``, ``foreign_keys``, ``if_not_exists``."""
        self.db.execute(create_table_sql(self.name, columns, pk, **options))
        return self

    def create_index(self, columns: Sequence[str], unique: bool = False) -> Table:
        name = quote(f"idx_{self.name.replace(' ', '_')}_{'_'.join(columns)}")
        kind = "UNIQUE INDEX" if unique else "INDEX"
        targets = ", ".join(map(quote, columns))
        self.db.execute(f"CREATE {kind} {name}\n    ON {quote(self.name)} ({targets})")
        return self

    def add_column(self, name: str, kind: type = str, not_null_default: Any = None) -> Table:
        extra = ""
        if not_null_default is not None:
            extra = f" NOT NULL DEFAULT {_default(not_null_default)}"
        column = f"{quote(name)} {COLUMN_TYPES[kind]}{extra}"
        self.db.execute(f"ALTER TABLE {quote(self.name)} ADD COLUMN {column};")
        return self

    def drop(self) -> None:
        self.db.execute(f"DROP TABLE {quote(self.name)}")

    def rows_where(
        self,
        where: str | None = None,
        args: Sequence[Any] | None = None,
        order_by: str | None = None,
        select: str = "*",
        limit: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Rows as dicts; ``where`` and ``order_by`` are this program's SQL, values go in
        ``args``."""
        sql = f"SELECT {select} FROM {quote(self.name)}"  # noqa: S608 (quoted name)
        params = list(args or [])
        if where is not None:
            sql += f" WHERE {where}"
        if order_by is not None:
            sql += f" ORDER BY {order_by}"
        if limit is not None:
            sql, params = sql + " LIMIT ?", [*params, limit]
        cursor = self.db.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return (dict(zip(names, row, strict=True)) for row in cursor)

    @property
    def rows(self) -> Iterator[dict[str, Any]]:
        return self.rows_where()

    def count_where(self, where: str | None = None, args: Sequence[Any] | None = None) -> int:
        sql = f"SELECT count(*) FROM {quote(self.name)}"  # noqa: S608 (quoted name)
        if where is not None:
            sql += f" WHERE {where}"
        return self.db.execute(sql, list(args or [])).fetchone()[0]

    @property
    def count(self) -> int:
        return self.count_where()

    @staticmethod
    def _columns(names: Iterable[str]) -> str:
        return "(" + ", ".join(map(quote, names)) + ")"

    def _key(self, pk_values: Any) -> tuple[str, list[Any]]:
        values = list(pk_values) if isinstance(pk_values, (list, tuple)) else [pk_values]
        pks = self.pks
        if len(values) != len(pks):
            raise NotFoundError(f"{self.name} has a primary key of {len(pks)} column(s)")
        return " AND ".join(f"{quote(pk)} = ?" for pk in pks), values

    def get(self, pk_values: Any) -> dict[str, Any]:
        """The row with this primary key (a tuple for a compound key); ``NotFoundError``
        if there is none."""
        where, values = self._key(pk_values)
        for row in self.rows_where(where, values):
            return row
        raise NotFoundError(f"no row in {self.name} with key {pk_values!r}")

    def update(self, pk_values: Any, updates: dict[str, Any] | None = None) -> Table:
        """Set the given columns of one existing row (``NotFoundError`` if it is missing)."""
        where, values = self._key(pk_values)
        if not self.count_where(where, values):
            raise NotFoundError(f"no row in {self.name} with key {pk_values!r}")
        if updates:
            sets = ", ".join(f"{quote(column)} = ?" for column in updates)
            params = [*map(_value, updates.values()), *values]
            sql = f"UPDATE {quote(self.name)} SET {sets} WHERE {where}"  # noqa: S608 (quoted)
            self.db.execute(sql, params)
        return self

    def delete(self, pk_values: Any) -> Table:
        """Delete one existing row (``NotFoundError`` if it is missing)."""
        where, values = self._key(pk_values)
        sql = f"DELETE FROM {quote(self.name)} WHERE {where}"  # noqa: S608 (quoted names)
        if not self.db.execute(sql, values).rowcount:
            raise NotFoundError(f"no row in {self.name} with key {pk_values!r}")
        return self

    def insert(self, record: dict[str, Any], *, replace: bool = False) -> Table:
        """One row; ``replace`` first deletes any row it conflicts with. ``last_pk`` is
        the new row's rowid (its id, for an ``INTEGER PRIMARY KEY``)."""
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        values = f"{self._columns(record)} VALUES ({', '.join('?' for _ in record)})"
        sql = f"{verb} INTO {quote(self.name)} {values if record else 'DEFAULT VALUES'}"
        self.last_pk = self.db.execute(sql, [_value(v) for v in record.values()]).lastrowid
        return self

    def insert_all(self, records: Iterable[dict[str, Any]], *, replace: bool = False) -> Table:
        """Every record, or none of them (a savepoint inside the caller's transaction)."""
        with self.db.atomic():
            for record in records:
                self.insert(record, replace=replace)
        return self

    def upsert(self, record: dict[str, Any], pk: Key) -> Table:
        """Insert the row, or where its key exists set only the columns ``record`` names."""
        keys = [pk] if isinstance(pk, str) else list(pk)
        missing = [k for k in keys if record.get(k) is None]
        if missing:
            raise ValueError(f"upsert into {self.name} needs a value for {missing}")
        sets = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in record if c not in keys)
        marks = ", ".join("?" for _ in record)
        sql = f"INSERT INTO {quote(self.name)} {self._columns(record)} VALUES ({marks}) "  # noqa: S608
        sql += f"ON CONFLICT{self._columns(keys)} " + (
            f"DO UPDATE SET {sets}" if sets else "DO NOTHING"
        )
        self.db.execute(sql, [_value(v) for v in record.values()])
        self.last_pk = record[keys[0]] if len(keys) == 1 else tuple(record[k] for k in keys)
        return self

    def upsert_all(self, records: Iterable[dict[str, Any]], pk: Key) -> Table:
        with self.db.atomic():
            for record in records:
                self.upsert(record, pk)
        return self
