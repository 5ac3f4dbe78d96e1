"""Store calls from the event loop: written out at the call site, run in a worker thread."""

from __future__ import annotations

import threading

import pytest

from core.plane import OffLoop
from core.store import Store


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "shipbot.db")


async def test_a_store_call_runs_in_a_worker_thread_and_returns_its_result(store):
    db = OffLoop(store)
    loop_thread = threading.get_ident()
    ran_in: list[int] = []

    def call() -> str:
        ran_in.append(threading.get_ident())
        return store.plane_id()

    assert await db.in_thread(call) == store.plane_id()
    assert len(ran_in) == 1 and ran_in[0] != loop_thread


async def test_a_call_raises_on_the_loop_what_it_raised_in_the_thread(store):
    db = OffLoop(store)
    with pytest.raises(KeyError, match="no-such"):
        await db.in_thread(lambda: {}["no-such"])


async def test_the_store_is_reached_only_through_written_calls(store):
    db = OffLoop(store)
    assert db.store is store
    # no proxy: a store method is not an attribute of the off-loop runner
    with pytest.raises(AttributeError):
        db.live_release  # noqa: B018
    assert await db.in_thread(lambda: db.store.live_release("api", "production")) is None
