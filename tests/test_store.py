"""The SQLite store: migrations, releases, deployments, locks, approvals, variables, outbox."""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.store import RELEASE_UNKNOWN, App, Store
from core.store.migrations import HISTORY
from core.store.sql import Database


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path / "s.db")
    yield opened
    opened.close()


def new(store: Store, app: str = "a", env: str = "production"):
    return store.new_release(
        app=app,
        env=env,
        image_for=lambda n: f"shipbot/{app}:{n}",
        source_ref=None,
        deployed_by="console:x",
    )


def schema(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    conn.close()
    return [*rows, ("user_version", str(version))]


def columns(store: Store, table: str) -> set[str]:
    return set(store.db[table].columns_dict)


def old_format_db(path: Path, version: int) -> None:
    """A state file as the single-module store left it: its migration functions (moved
    here unchanged) applied the way its ``_migrate`` did, counted in ``user_version``."""
    db = Database(sqlite3.connect(path))
    db.enable_wal()
    for number, step in enumerate(HISTORY[:version], start=1):
        with db.conn:
            step(db)
            db.execute(f"PRAGMA user_version = {number}")
    db["apps"].insert(
        {
            "name": "a",
            "source_kind": "path",
            "source": "/a",
            "ref": None,
            "created_by": "console:x",
            "created_at": 1.0,
        }
    )
    db["deployments"].insert(
        {
            "app": "a",
            "env": "production",
            "kind": "deploy",
            "release": 1,
            "status": "running",
            "started_by": "console:x",
            "pid": 1,
            "started_at": 2.0,
        }
    )
    db.conn.close()


def test_migrations_once_and_wal(tmp_path: Path):
    first = Store(tmp_path / "s.db")
    assert first.schema_version == len(HISTORY)
    first.add_app(App("a", "path", "/a", None, "console:x", 1.0))
    first.close()
    again = Store(tmp_path / "s.db")
    assert again.schema_version == len(HISTORY) and again.get_app("a").source == "/a"
    assert again.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    applied = again.db.execute("SELECT migration_set, name FROM _sqlite_migrations ORDER BY id")
    assert applied.fetchall() == [("shipbot", step.__name__) for step in HISTORY]
    # an older shipbot reads user_version: it must find nothing left to apply
    assert again.db.execute("PRAGMA user_version").fetchone()[0] == len(HISTORY)
    again.close()


@pytest.mark.parametrize("version", [1, 2, 3])
def test_upgrade_from_old_format(tmp_path: Path, version: int):
    path = tmp_path / "s.db"
    old_format_db(path, version)
    store = Store(path)
    assert store.schema_version == len(HISTORY)
    names = [row["name"] for row in store.db["_sqlite_migrations"].rows_where(order_by="id")]
    assert names == [step.__name__ for step in HISTORY]
    assert store.get_app("a") == App("a", "path", "/a", None, "console:x", 1.0, credential=None)
    assert {"commit_sha", "digest", "request", "break_glass"} <= columns(store, "approvals")
    assert "credential" in columns(store, "apps") and "id" in columns(store, "outbox")
    # the old code's running deployment last showed life when it started
    assert store.deployment(1)["heartbeat_at"] == 2.0
    assert [row["id"] for row in store.interrupt_orphans(stale_after=60)] == [1]
    store.close()
    upgraded = schema(path)
    Store(path).close()
    assert schema(path) == upgraded


def test_failed_upgrade_leaves_the_old_file_as_it_was(tmp_path: Path):
    path = tmp_path / "s.db"
    old_format_db(path, 3)
    # the new migration's last step (adding deployments.heartbeat_at) will fail
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE deployments ADD COLUMN heartbeat_at FLOAT")
    conn.close()
    before = schema(path)
    with pytest.raises(sqlite3.OperationalError, match="duplicate column"):
        Store(path)
    assert schema(path) == before  # no approvals columns, no _sqlite_migrations, version 3


def test_release_numbers_per_app_across_envs(store: Store):
    assert [new(store).number, new(store, env="staging").number, new(store).number] == [1, 2, 3]
    assert new(store, app="b").image == "shipbot/b:1"
    assert store.release_numbers("a") == [1, 2, 3]
    assert store.release_numbers("b") == [1]
    assert store.release_numbers("nothing") == []


def test_mark_live_supersedes_only_its_env(store: Store):
    one, staging, two = new(store), new(store, env="staging"), new(store)
    store.mark_live(one.id)
    store.mark_live(staging.id)
    store.mark_live(two.id)
    assert store.release_by_id(one.id).status == "superseded"
    assert store.live_release("a", "production").id == two.id
    assert store.live_release("a", "staging").id == staging.id
    assert [r.number for r in store.releases("a", "production", limit=1)] == [3]


def test_mark_live_failing_half_way_changes_nothing(store: Store):
    one, two = new(store), new(store)
    store.mark_live(one.id)
    # the second statement of mark_live (the new release goes live) fails
    store.db.execute(
        "CREATE TRIGGER refuse BEFORE UPDATE OF status ON releases "
        f"WHEN NEW.id = {two.id} BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    with pytest.raises(sqlite3.IntegrityError, match="refused"):
        store.mark_live(two.id)
    assert store.release_by_id(one.id).status == "live"  # not left superseded
    assert store.release_by_id(two.id).status == "deploying"


def test_set_release_status(store: Store):
    one, two = new(store), new(store)
    store.mark_live(one.id)
    assert store.set_release_status(two.id, RELEASE_UNKNOWN).status == "unknown"
    assert store.set_release_status(two.id, "live", "seen in swarm").message == "seen in swarm"
    assert store.release_by_id(one.id).status == "superseded"
    with pytest.raises(ValueError, match="'gone'"):
        store.set_release_status(two.id, "gone")


def test_interrupted_deployments(store: Store):
    release = new(store)
    stale = store.start_deployment(
        app="a", env="production", kind="deploy", started_by="console:x", release=release.number
    )
    # its pid is ours, and alive: only the heartbeat decides
    assert store.deployment(stale)["pid"] == os.getpid()
    store.db["deployments"].update(stale, {"heartbeat_at": time.time() - 61})
    fresh = store.start_deployment(app="b", env="production", kind="deploy", started_by="console:x")
    orphans = store.interrupt_orphans(stale_after=60)
    assert [row["id"] for row in orphans] == [stale]
    assert orphans[0]["status"] == "interrupted" and "no heartbeat for 61s" in orphans[0]["message"]
    assert store.deployment(stale)["status"] == "interrupted"
    assert store.deployment(fresh)["status"] == "running"
    assert store.release_by_id(release.id).status == RELEASE_UNKNOWN
    assert store.interrupt_orphans(stale_after=60) == []


def test_heartbeat_keeps_a_long_deployment_alive(store: Store):
    started = store.start_deployment(app="a", env="production", kind="deploy", started_by="u")
    store.db["deployments"].update(started, {"heartbeat_at": time.time() - 600})
    assert store.heartbeat_deployment(started) is True
    assert store.interrupt_orphans(stale_after=60) == []
    store.finish_deployment(started, "succeeded")
    assert store.heartbeat_deployment(started) is False  # finished: nothing to keep alive
    store.db["deployments"].update(started, {"heartbeat_at": 0.0})
    assert store.interrupt_orphans(stale_after=60) == []  # only running ones are orphans


def test_interrupt_orphans_failing_half_way_changes_nothing(store: Store):
    release = new(store)
    running = store.start_deployment(app="a", env="production", kind="deploy", started_by="u")
    store.db["deployments"].update(running, {"heartbeat_at": 0.0})
    store.db.execute(
        "CREATE TRIGGER refuse BEFORE UPDATE OF status ON releases "
        "WHEN NEW.status = 'unknown' BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    with pytest.raises(sqlite3.IntegrityError, match="refused"):
        store.interrupt_orphans(stale_after=60)
    assert store.deployment(running)["status"] == "running"
    assert store.release_by_id(release.id).status == "deploying"


def test_lock_held_then_stale(store: Store):
    assert store.acquire_lock("a/p", owner="u", what="deploy", ttl=60, host="h") is None
    holder = store.acquire_lock("a/p", owner="v", what="deploy", ttl=60, host="h")
    assert holder["owner"] == "u"
    store.db["locks"].update("a/p", {"heartbeat_at": time.time() - 61})
    assert store.acquire_lock("a/p", owner="v", what="deploy", ttl=60, host="h") is None
    store.release_lock("a/p", "u")  # not the owner any more: nothing happens
    assert store.db["locks"].get("a/p")["owner"] == "v"
    assert store.force_unlock("a/p")["owner"] == "v" and store.db["locks"].count == 0


def approval_row(**extra: object) -> dict[str, object]:
    return {
        "app": "a",
        "env": "production",
        "command": "deploy a",
        "requester": "console:r",
        "channel": "c",
        "platform": "console",
        "required": 1,
        "approvers": '["deployer"]',
        "created_at": 1.0,
        "expires_at": time.time() + 60,
        "note": "",
        **extra,
    }


def test_approval_compare_and_set(store: Store):
    approval = store.add_approval(approval_row())
    assert store.record_approval(approval, ["console:x"], "approved") is True
    assert store.record_approval(approval, ["console:y"], "approved") is False
    assert store.decide_approval(approval, "rejected") is False
    assert store.approval(approval)["approved_by"] == '["console:x"]'


def test_approval_pins_what_was_approved(store: Store):
    pinned = {
        "commit_sha": "0" * 40,
        "digest": "sha256:" + "1" * 64,
        "request": '{"command": "deploy", "app": "a"}',
        "break_glass": "prod is down",
    }
    approval = store.add_approval(approval_row(**pinned))
    row = store.approval(approval)
    assert {key: row[key] for key in pinned} == pinned


def test_grants_once(store: Store):
    grant = {"user": "u", "role": "deployer", "app": "a", "env": "*"}
    assert store.add_grant(**grant, granted_by="admin") is True
    assert store.add_grant(**grant, granted_by="admin") is False
    assert [g["user"] for g in store.grants("u")] == ["u"]
    assert store.remove_grant(**grant) is True and store.grants() == []


def test_app_credential(store: Store):
    store.add_app(App("a", "git", "https://example.invalid/a.git", "main", "console:x", 1.0))
    assert store.get_app("a").credential is None
    assert store.set_app_credential("a", "gAAAA-encrypted") is True
    assert store.get_app("a").credential == "gAAAA-encrypted"
    assert store.set_app_credential("b", "x") is False


def test_variables_and_audit(store: Store):
    store.set_variable(app="a", env="production", key="K", value="1", secret=False, updated_by="u")
    store.set_variable(app="a", env="production", key="K", value="2", secret=False, updated_by="u")
    assert [(v["key"], v["value"]) for v in store.variables("a", "production")] == [("K", "2")]
    assert store.unset_variable(app="a", env="production", key="K") is True
    assert store.unset_variable(app="a", env="production", key="K") is False
    store.audit(user="u", channel="c", command="deploy a", result="ok", app="a")
    store.audit(user="u", channel="c", command="deploy b", result="denied", app="b")
    assert [r["command"] for r in store.audit_log()] == ["deploy b", "deploy a"]
    assert [r["command"] for r in store.audit_log("a")] == ["deploy a"]


def enqueue(store: Store) -> int:
    return store.enqueue(platform="slack", channel="C1", kind="deploys", payload="{}")


def test_outbox_dead_letter_after_max_attempts_and_requeue(store: Store):
    message, healthy = enqueue(store), enqueue(store)
    statuses = [store.mark_retry(message, f"boom {n}", 0) for n in range(1, 9)]
    assert statuses == ["pending"] * 7 + ["dead"]
    assert [row["id"] for row in store.due_messages("slack", time.time())] == [healthy]
    (dead,) = store.dead_letters()
    assert (dead["id"], dead["attempts"], dead["last_error"]) == (message, 8, "boom 8")
    assert store.outbox_counts() == {"pending": 1, "sent": 0, "dead": 1}
    assert store.requeue(message) is True
    assert store.requeue(message) is False  # pending now, not dead
    revived = store.due_messages("slack", time.time())[0]
    assert (revived["id"], revived["attempts"], revived["status"]) == (message, 0, "pending")
    store.mark_sent(message)
    assert store.outbox_counts() == {"pending": 1, "sent": 1, "dead": 0}
    assert store.dead_letters() == []


def test_outbox_max_attempts_is_per_call(store: Store):
    message = enqueue(store)
    assert store.mark_retry(message, "boom", 0, max_attempts=2) == "pending"
    assert store.mark_retry(message, "boom", 0, max_attempts=2) == "dead"


def test_files_are_private(tmp_path: Path):
    previous = os.umask(0o022)  # what a default shell would leave to SQLite
    try:
        store = Store(tmp_path / "s.db")
        for suffix in ("", "-wal", "-shm"):
            assert stat.S_IMODE(os.stat(f"{store.path}{suffix}").st_mode) == 0o600, suffix
        store.close()
        # a state file made before (or by another tool) is made private on open
        loose = tmp_path / "loose.db"
        sqlite3.connect(loose).close()
        assert stat.S_IMODE(loose.stat().st_mode) == 0o644
        Store(loose).close()
        assert stat.S_IMODE(loose.stat().st_mode) == 0o600
        assert os.umask(0o022) == 0o022  # the process' umask is given back
    finally:
        os.umask(previous)
