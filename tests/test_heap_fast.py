"""serve freezes what it made while it came up, once (bot/heap.py)."""

from __future__ import annotations

import gc

import pytest

from bot import heap


def test_the_second_round_collects_and_freezes_and_no_later_one_does(
    monkeypatch: pytest.MonkeyPatch,
):
    done: list[str] = []
    monkeypatch.setattr(gc, "collect", lambda: done.append("collect") or 0)
    monkeypatch.setattr(gc, "freeze", lambda: done.append("freeze"))
    rounds = heap.FreezeOnce()
    rounds()
    assert done == []  # the first round runs as serve starts: the adapters are not up yet
    rounds()
    assert done == ["collect", "freeze"]
    for _ in range(5):
        rounds()
    assert done == ["collect", "freeze"]  # once: later objects are collected as before
