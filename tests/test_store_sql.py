"""core/store/sql.py: the store's own layer on the standard library's sqlite3, on real files."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.store.migrations import Migrations
from core.store.sql import Database, NotFoundError, create_table_sql


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    opened = Database(sqlite3.connect(tmp_path / "t.db"))
    yield opened
    opened.conn.close()


def schema_of(db: Database, name: str) -> str:
    return db.execute("SELECT sql FROM sqlite_master WHERE name = ?", [name]).fetchone()[0]


def test_create_writes_the_ddl_sqlite_utils_wrote():
    sql = create_table_sql(
        "jobs",
        {"id": int, "name": str, "ratio": float, "done": bool, "blob": bytes, "owner": str},
        pk="id",
        not_null={"name"},
        defaults={"ratio": 0.5, "name": "it's"},
        foreign_keys=[("owner", "people", "login")],
    )
    assert sql == (
        'CREATE TABLE "jobs" (\n'
        '   "id" INTEGER PRIMARY KEY,\n'
        "   \"name\" TEXT NOT NULL DEFAULT 'it''s',\n"
        '   "ratio" REAL DEFAULT 0.5,\n'
        '   "done" INTEGER,\n'
        '   "blob" BLOB,\n'
        '   "owner" TEXT REFERENCES "people"("login")\n'
        ");"
    )
    compound = create_table_sql(
        "v", {"app": str, "key": str}, pk=("app", "key"), if_not_exists=True
    )
    assert compound == (
        'CREATE TABLE IF NOT EXISTS "v" (\n   "app" TEXT,\n   "key" TEXT,\n'
        '   PRIMARY KEY ("app", "key")\n);'
    )
    with pytest.raises(ValueError, match=r"\['nope'\]"):
        create_table_sql("v", {"app": str}, not_null={"nope"})


def test_create_index_add_column_and_drop(db: Database):
    db["t"].create({"key": str, "n": int}, pk="key")
    db["t"].create_index(["key", "n"], unique=True)
    db["t"].create_index(["n"])
    db["t"].add_column("note", str)
    db["t"].add_column("addresses", str, not_null_default="")
    db["t"].add_column("at", float)
    assert (
        schema_of(db, "idx_t_key_n") == 'CREATE UNIQUE INDEX "idx_t_key_n"\n    ON "t" ("key", "n")'
    )
    assert schema_of(db, "idx_t_n") == 'CREATE INDEX "idx_t_n"\n    ON "t" ("n")'
    assert schema_of(db, "t") == (
        'CREATE TABLE "t" (\n   "key" TEXT PRIMARY KEY,\n   "n" INTEGER\n'
        ', "note" TEXT, "addresses" TEXT NOT NULL DEFAULT \'\', "at" REAL)'
    )
    assert db["t"].columns_dict == {
        "key": "TEXT",
        "n": "INTEGER",
        "note": "TEXT",
        "addresses": "TEXT",
        "at": "REAL",
    }
    db["t"].insert({"key": "a"})
    assert db["t"].get("a")["addresses"] == ""  # the default fills a row that names it not
    assert db["t"].exists() and db.table_names() == ["t"]
    db["t"].drop()
    assert not db["t"].exists() and db.table_names() == []


def test_insert_keeps_the_rowid_stores_json_and_refuses_duplicates_unless_replacing(
    db: Database,
):
    db["t"].create({"id": int, "name": str, "data": str}, pk="id")
    assert db["t"].insert({"name": "a", "data": {"k": ["é", 1]}}).last_pk == 1
    assert db["t"].insert({"name": "b", "data": [1, 2]}).last_pk == 2
    assert db["t"].get(1) == {"id": 1, "name": "a", "data": '{"k": ["é", 1]}'}
    assert db["t"].get(2)["data"] == "[1, 2]"
    with pytest.raises(sqlite3.IntegrityError):
        db["t"].insert({"id": 1, "name": "again"})
    db["t"].insert({"id": 1, "name": "again"}, replace=True)  # the whole row replaced
    assert db["t"].get(1) == {"id": 1, "name": "again", "data": None}
    with pytest.raises(sqlite3.OperationalError, match="no column named nope"):
        db["t"].insert({"nope": 1})  # no column is added on the way


def test_get_update_delete_by_single_and_compound_keys(db: Database):
    db["p"].create({"app": str, "number": int, "status": str, "at": float}, pk=("app", "number"))
    db["p"].insert({"app": "shop", "number": 7, "status": "open", "at": 1.0})
    assert db["p"].pks == ["app", "number"]
    db["p"].update(("shop", 7), {"status": "closed", "at": {"t": 2}})
    assert db["p"].get(("shop", 7)) == {
        "app": "shop",
        "number": 7,
        "status": "closed",
        "at": '{"t": 2}',
    }
    for missing in (("shop", 8), ("shop",), "shop"):
        with pytest.raises(NotFoundError):
            db["p"].get(missing)
    with pytest.raises(NotFoundError):
        db["p"].update(("shop", 8), {"status": "x"})
    assert db["p"].count == 1  # an update of a missing row inserts nothing
    db["p"].delete(("shop", 7))
    assert db["p"].count == 0
    with pytest.raises(NotFoundError):
        db["p"].delete(("shop", 7))
    db["r"].create({"id": int, "v": str}, pk="id")
    db["r"].insert({"v": "x"})
    db["r"].update(1, {"v": None})
    assert db["r"].get(1) == {"id": 1, "v": None}
    db["n"].create({"v": str})  # no primary key: rows are found by rowid
    db["n"].insert({"v": "only"})
    assert db["n"].pks == ["rowid"] and db["n"].get(1) == {"v": "only"}


def test_upsert_sets_only_the_columns_given(db: Database):
    db["s"].create({"server": str, "since": float, "error": str, "tried": float}, pk="server")
    db["s"].upsert({"server": "a", "since": 1.0, "error": "down", "tried": 2.0}, pk="server")
    db["s"].upsert({"server": "a", "tried": 3.0}, pk="server")
    assert db["s"].get("a") == {"server": "a", "since": 1.0, "error": "down", "tried": 3.0}
    assert db["s"].upsert({"server": "b", "error": "x"}, pk="server").last_pk == "b"
    assert db["s"].get("b") == {"server": "b", "since": None, "error": "x", "tried": None}
    db["s"].upsert({"server": "b"}, pk="server")  # only the key: nothing to change
    assert db["s"].count == 2
    with pytest.raises(ValueError, match="needs a value"):
        db["s"].upsert({"error": "no key"}, pk="server")
    db["e"].create({"app": str, "env": str, "server": str}, pk=("app", "env"))
    db["e"].upsert_all(
        [
            {"app": "shop", "env": "prod", "server": "a"},
            {"app": "shop", "env": "prod", "server": "b"},
            {"app": "shop", "env": "stage", "server": "c"},
        ],
        pk=("app", "env"),
    )
    assert list(db["e"].rows_where(order_by="env")) == [
        {"app": "shop", "env": "prod", "server": "b"},
        {"app": "shop", "env": "stage", "server": "c"},
    ]


def test_rows_where_count_where_and_insert_all(db: Database):
    db["a"].create({"id": int, "app": str, "ts": float}, pk="id")
    db["a"].insert_all({"app": app, "ts": float(n)} for n, app in enumerate("xyxyx"))
    assert db["a"].count == 5 and db["a"].count_where("app = ?", ["x"]) == 3
    rows = db["a"].rows_where("app = ?", ["x"], order_by="id DESC", limit=2)
    assert list(rows) == [{"id": 5, "app": "x", "ts": 4.0}, {"id": 3, "app": "x", "ts": 2.0}]
    assert list(db["a"].rows_where("id < ?", [3], select="app")) == [{"app": "x"}, {"app": "y"}]
    assert len(list(db["a"].rows)) == 5
    # insert_all is whole or nothing: the duplicate id undoes the rows before it
    with pytest.raises(sqlite3.IntegrityError):
        db["a"].insert_all([{"id": 6, "app": "z"}, {"id": 1, "app": "dup"}])
    assert db["a"].count == 5


def test_autocommit_outside_and_savepoints_inside_a_transaction(tmp_path: Path):
    path = tmp_path / "t.db"
    db = Database(sqlite3.connect(path))
    db["t"].create({"id": int, "v": str}, pk="id")
    db["t"].insert({"v": "committed at once"})
    other = sqlite3.connect(path)
    assert other.execute("SELECT count(*) FROM t").fetchone() == (1,)
    db.execute("BEGIN IMMEDIATE")
    db["t"].insert({"v": "kept"})
    with pytest.raises(RuntimeError), db.atomic():
        db["t"].insert({"v": "undone"})
        raise RuntimeError
    assert db.conn.in_transaction  # the savepoint's rollback left the outer transaction
    db.execute("COMMIT")
    assert [v for (v,) in other.execute("SELECT v FROM t ORDER BY id")] == [
        "committed at once",
        "kept",
    ]
    with pytest.raises(RuntimeError), db.atomic():
        db["t"].insert({"v": "undone too"})
        raise RuntimeError
    assert db["t"].count == 2 and not db.conn.in_transaction
    db.enable_wal()
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    other.close()
    db.conn.close()


def test_migrations_apply_each_step_once_in_order_and_a_failing_one_not_at_all(db: Database):
    steps = Migrations("toy")
    ran: list[str] = []

    @steps()
    def m1_first(db: Database) -> None:
        ran.append("m1")
        db["first"].create({"id": int}, pk="id")

    @steps()
    def m2_second(db: Database) -> None:
        ran.append("m2")
        db["second"].create({"id": int}, pk="id")

    with pytest.raises(ValueError, match="already"):
        steps()(m1_first)
    assert steps.applied(db) == [] and steps.pending(db) == ["m1_first", "m2_second"]
    steps.apply(db)
    steps.apply(db)
    assert ran == ["m1", "m2"] and steps.applied(db) == ["m1_first", "m2_second"]
    rows = db.execute("SELECT id, migration_set, name FROM _sqlite_migrations").fetchall()
    assert rows == [(1, "toy", "m1_first"), (2, "toy", "m2_second")]
    assert Migrations("other").applied(db) == []  # each set reads only its own rows

    @steps()
    def m3_breaks(db: Database) -> None:
        db["third"].create({"id": int}, pk="id")
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        steps.apply(db)
    assert not db["third"].exists() and steps.pending(db) == ["m3_breaks"]
