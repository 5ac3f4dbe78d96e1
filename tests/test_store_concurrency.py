"""The store against other connections and processes on the same file: busy timeouts,
``StoreBusy``, audit rows that wait for the lock, and read-then-write serialised."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.store import App, Store, StoreBusy
from core.store.migrations import HISTORY

# Holds the state file's write lock until told to let go (a line on stdin).
HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("held", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
print("free", flush=True)
"""


class LockHolder:
    """Another shipbot-like process holding ``BEGIN IMMEDIATE`` on the file."""

    def __init__(self, path: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout.readline() == "held\n"

    def release(self) -> None:
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline() == "free\n"
        self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdin.close()
        self.proc.stdout.close()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    Store(tmp_path / "s.db").close()  # migrated before anyone holds the lock
    return tmp_path / "s.db"


@pytest.fixture
def holder(path: Path) -> Iterator[LockHolder]:
    held = LockHolder(path)
    yield held
    held.close()


def test_busy_write_raises_store_busy_within_the_timeout(path: Path, holder: LockHolder):
    store = Store(path, busy_timeout=0.3)  # opening an up-to-date file takes no lock
    started = time.monotonic()
    with pytest.raises(StoreBusy) as caught:
        store.add_app(App("a", "path", "/a", None, "console:x", 1.0))
    waited = time.monotonic() - started
    assert 0.25 <= waited < 3.0
    assert str(caught.value) == (
        f"the state file {path} is locked by another shipbot process (waited 0.3s); "
        "try again in a moment"
    )
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
    holder.release()
    store.add_app(App("a", "path", "/a", None, "console:x", 1.0))  # the lock is free again
    assert store.get_app("a").source == "/a"
    store.close()


def test_audit_row_waits_for_the_lock_and_is_written_after(path: Path, holder: LockHolder):
    store = Store(path, busy_timeout=0.2)
    store.audit(user="u", channel="c", command="deploy a", result="ok", app="a")  # no raise
    store.audit(user="u", channel="c", command="deploy b", result="ok", app="b")
    assert store.pending_audit == 2
    with pytest.raises(StoreBusy):
        store.flush_audit()
    assert store.pending_audit == 2
    holder.release()
    store.audit(user="u", channel="c", command="deploy c", result="ok", app="c")
    assert store.pending_audit == 0
    other = Store(path)  # read through another connection: the rows are really on disk
    rows = other.audit_log()
    other.close()
    assert [row["command"] for row in rows] == ["deploy c", "deploy b", "deploy a"]
    assert rows[2]["ts"] < rows[1]["ts"] < rows[0]["ts"]  # each keeps the time it happened
    store.close()


def test_flush_audit_writes_what_waited(path: Path, holder: LockHolder):
    store = Store(path, busy_timeout=0.2)
    store.audit(user="u", channel="c", command="deploy a", result="ok", app="a")
    holder.release()
    assert store.flush_audit() == 1
    assert store.flush_audit() == 0
    assert [row["command"] for row in store.audit_log("a")] == ["deploy a"]
    store.close()


def test_a_write_waits_for_the_lock_then_reads_what_the_holder_wrote(path: Path):
    """The holder gives the lock back only once the store is already waiting for it; the
    store's release must then be numbered after the one the holder wrote meanwhile."""
    store = Store(path, busy_timeout=10)
    held, store_waiting = threading.Event(), threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO releases (app, env, number, image, status, created_at) "
            "VALUES ('a', 'production', 1, 'shipbot/a:1', 'live', 0)"
        )
        held.set()
        assert store_waiting.wait(10)
        conn.execute("COMMIT")
        conn.close()

    holding = threading.Thread(target=hold)
    holding.start()
    assert held.wait(10)
    # SQLite traces a statement as it starts, before it waits for the lock
    store.db.conn.set_trace_callback(
        lambda sql: store_waiting.set() if sql.startswith("BEGIN IMMEDIATE") else None
    )
    release = store.new_release(
        app="a",
        env="production",
        image_for=lambda n: f"shipbot/a:{n}",
        source_ref=None,
        deployed_by="u",
    )
    holding.join()
    store.db.conn.set_trace_callback(None)
    assert store_waiting.is_set()
    assert (release.number, release.image) == (2, "shipbot/a:2")
    store.close()


def test_concurrent_stores_number_releases_and_take_locks_once(path: Path):
    """Eight connections at once: read-then-write (next number, lock holder) never races."""
    workers = 8
    start = threading.Barrier(workers)
    numbers: list[int] = []
    winners: list[str] = []
    errors: list[BaseException] = []

    def work(n: int) -> None:
        store = Store(path, busy_timeout=10)
        try:
            start.wait()
            release = store.new_release(
                app="a",
                env="production",
                image_for=lambda number: f"shipbot/a:{number}",
                source_ref=None,
                deployed_by=f"u{n}",
            )
            numbers.append(release.number)
            if store.acquire_lock("a/production", owner=f"u{n}", what="deploy", ttl=60, host="h"):
                return
            winners.append(f"u{n}")
        except BaseException as exc:
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(numbers) == list(range(1, workers + 1))
    assert len(winners) == 1


def test_one_store_shared_by_threads_keeps_transactions_whole(tmp_path: Path):
    """Worker threads share one connection (the engine calls the store off the event
    loop): each thread's transaction must not swallow another's statements."""
    store = Store(tmp_path / "s.db")
    start = threading.Barrier(6)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            start.wait()
            for _ in range(20):
                release = store.new_release(
                    app="a",
                    env=f"env{n}",
                    image_for=lambda number: f"shipbot/a:{number}",
                    source_ref=None,
                    deployed_by="u",
                )
                store.mark_live(release.id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.release_numbers("a") == list(range(1, 121))
    assert all(store.live_release("a", f"env{n}") is not None for n in range(6))
    store.close()


def test_fresh_file_opened_by_many_at_once_is_migrated_once(tmp_path: Path):
    path = tmp_path / "s.db"
    start = threading.Barrier(6)
    errors: list[BaseException] = []

    def open_store() -> None:
        try:
            start.wait()
            Store(path, busy_timeout=10).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    store = Store(path)
    assert store.db["_sqlite_migrations"].count == store.schema_version == len(HISTORY)
    store.close()
