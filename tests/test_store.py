"""The SQLite store: migrations, releases, deployments, locks, approvals, variables."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from core.store import MIGRATIONS, App, Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "s.db")


def new(store: Store, app: str = "a", env: str = "production"):
    return store.new_release(
        app=app,
        env=env,
        image_for=lambda n: f"shipbot/{app}:{n}",
        source_ref=None,
        deployed_by="console:x",
    )


def test_migrations_once_and_wal(tmp_path: Path):
    first = Store(tmp_path / "s.db")
    assert first.schema_version == len(MIGRATIONS)
    first.add_app(App("a", "path", "/a", None, "console:x", 1.0))
    first.close()
    again = Store(tmp_path / "s.db")
    assert again.schema_version == len(MIGRATIONS) and again.get_app("a").source == "/a"
    assert again.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_release_numbers_per_app_across_envs(store: Store):
    assert [new(store).number, new(store, env="staging").number, new(store).number] == [1, 2, 3]
    assert new(store, app="b").image == "shipbot/b:1"


def test_mark_live_supersedes_only_its_env(store: Store):
    one, staging, two = new(store), new(store, env="staging"), new(store)
    store.mark_live(one.id)
    store.mark_live(staging.id)
    store.mark_live(two.id)
    assert store.release_by_id(one.id).status == "superseded"
    assert store.live_release("a", "production").id == two.id
    assert store.live_release("a", "staging").id == staging.id
    assert [r.number for r in store.releases("a", "production", limit=1)] == [3]


def test_interrupted_deployments(store: Store):
    release = new(store)
    dead = store.start_deployment(
        app="a", env="production", kind="deploy", started_by="console:x", release=release.number
    )
    store.db["deployments"].update(dead, {"pid": 999_999_999})
    alive = store.start_deployment(app="b", env="production", kind="deploy", started_by="console:x")
    orphans = store.interrupt_orphans(lambda pid: pid == os.getpid())
    assert [row["id"] for row in orphans] == [dead]
    assert store.deployment(dead)["status"] == "interrupted"
    assert store.deployment(alive)["status"] == "running"
    assert store.release_by_id(release.id).status == "failed"


def test_lock_held_then_stale(store: Store):
    assert store.acquire_lock("a/p", owner="u", what="deploy", ttl=60, host="h") is None
    holder = store.acquire_lock("a/p", owner="v", what="deploy", ttl=60, host="h")
    assert holder["owner"] == "u"
    store.db["locks"].update("a/p", {"heartbeat_at": time.time() - 61})
    assert store.acquire_lock("a/p", owner="v", what="deploy", ttl=60, host="h") is None
    store.release_lock("a/p", "u")  # not the owner any more: nothing happens
    assert store.db["locks"].get("a/p")["owner"] == "v"
    assert store.force_unlock("a/p")["owner"] == "v" and store.db["locks"].count == 0


def test_approval_compare_and_set(store: Store):
    approval = store.add_approval(
        {
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
        }
    )
    assert store.record_approval(approval, ["console:x"], "approved") is True
    assert store.record_approval(approval, ["console:y"], "approved") is False
    assert store.decide_approval(approval, "rejected") is False
    assert store.approval(approval)["approved_by"] == '["console:x"]'


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
