"""State files made by the store as it was on sqlite-utils 4.2.1 (tests/data/, made by
tests/data/make_state_files.py.txt at c415d99) open with the store on the standard library:
the newest one as up to date, an older one (v14) migrated, every row read back."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from core.store import App, Store
from core.store.migrations import HISTORY, needs_migration
from core.store.sql import Database

DATA = Path(__file__).resolve().parent / "data"
ROOT = DATA.parent.parent


def unpacked(name: str, tmp_path: Path) -> Path:
    path = tmp_path / name.removesuffix(".gz")
    with gzip.open(DATA / name, "rb") as src, path.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    return path


def schema(path: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()
    conn.close()
    return rows


def applied(path: Path) -> list[tuple[int, str, str]]:
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT id, migration_set, name FROM _sqlite_migrations ORDER BY id")
    found = rows.fetchall()
    conn.close()
    return found


def test_the_newest_file_is_up_to_date_and_reads_back(tmp_path: Path):
    path = unpacked("store-newest.db.gz", tmp_path)
    before = applied(path)
    assert len(before) == len(HISTORY)
    conn = sqlite3.connect(path)
    assert not needs_migration(Database(conn))
    conn.close()
    store = Store(path)
    assert store.schema_version == len(HISTORY)
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == len(HISTORY)
    assert store.get_app("shop") == App(
        "shop", "git", "https://git.example/shop.git", "main", "slack:U1", 1.0, credential=None
    )
    assert [a.name for a in store.list_apps()] == ["blog", "shop"]
    live = store.live_release("shop", "production")
    assert (live.number, live.image, live.source_ref) == (1, "shipbot/shop:1", "abc123")
    assert store.deployment(1)["status"] == "ok" and store.deployment(1)["release"] == live.id
    (grant,) = store.grants("slack:U2")
    assert (grant["role"], grant["app"], grant["env"]) == ("deployer", "shop", "production")
    (variable,) = store.variables("shop", "production")
    assert (variable["key"], variable["value"], variable["secret"]) == ("GREETING", "héllo", 0)
    (message,) = store.recent_messages()
    assert json.loads(message["payload"]) == {"text": "hi"} and message["status"] == "pending"
    assert store.server_outage("edge-1") == {
        "server": "edge-1",
        "since": 10.0,
        "error": "no route",
        "tried": 11.0,
    }
    assert len(store.plane_id()) == 16
    store.close()
    assert applied(path) == before  # nothing re-applied, nothing recorded twice
    # a file the new store makes has the same tables, indexes and DDL, to the character
    fresh = Store(tmp_path / "fresh.db")
    fresh.close()
    assert schema(tmp_path / "fresh.db") == schema(path)


def test_a_file_left_at_v14_migrates_and_keeps_its_rows(tmp_path: Path):
    path = unpacked("store-v14.db.gz", tmp_path)
    assert [name for _, _, name in applied(path)] == [s.__name__ for s in HISTORY[:14]]
    store = Store(path)
    assert store.schema_version == len(HISTORY)
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == len(HISTORY)
    assert applied(path) == [
        (n, "shipbot", step.__name__) for n, step in enumerate(HISTORY, start=1)
    ]
    assert store.get_app("shop").source == "/srv/shop"
    assert store.live_release("shop", "production").previous is None  # v21's new column
    # v16 granted what the live release routed; v17 made the attachment a production one
    (grant,) = store.domain_grants("shop")
    assert (grant["pattern"], grant["env"], grant["granted_by"]) == (
        "shop.example.com",
        "production",
        "upgrade",
    )
    assert store.database_attachments("users") == [("shop", "production")]
    assert not store.db["database_apps"].exists()
    assert store.server("edge-1")["addresses"] == ""  # v24's NOT NULL DEFAULT ''
    assert store.server_addresses("edge-1") == []
    store.close()
    fresh = Store(tmp_path / "fresh.db")
    fresh.close()
    assert schema(tmp_path / "fresh.db") == schema(path)
    Store(path).close()  # opened again: nothing left to do
    assert len(applied(path)) == len(HISTORY)


def test_the_store_loads_none_of_sqlite_utils_and_its_dependencies(tmp_path: Path):
    script = (
        "import sys, core.store; from pathlib import Path; "
        "core.store.Store(Path(sys.argv[1])).close(); "
        "print(' '.join(sorted(sys.modules)))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "s.db")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    modules = {name.split(".")[0] for name in done.stdout.split()}
    assert "core" in modules
    assert modules.isdisjoint({"sqlite_utils", "click", "dateutil", "pluggy", "sqlite_fts4"})
