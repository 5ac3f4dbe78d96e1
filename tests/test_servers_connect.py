"""Connecting to servers: one whose host is away holds up no other, and its failure is
given at once to the asks that follow within RETRY_AFTER_SECONDS, then tried again."""

from __future__ import annotations

import threading

import pytest

from core.servers.errors import ServerError
from core.swarm.servers import RETRY_AFTER_SECONDS, Servers
from tests.clock import ManualClock
from tests.fast_plane import fake_swarm


def test_an_unreachable_server_fails_once_per_window_and_is_tried_again_after():
    clock = ManualClock()
    tries: list[str] = []
    swarm = fake_swarm()

    def away():
        tries.append("eu-2")
        if len(tries) < 3:
            raise ServerError("cannot reach server eu-2 over SSH (timed out)")
        return swarm

    servers = Servers({"eu-2": away}, clock.monotonic)
    for _ in range(3):
        with pytest.raises(ServerError, match="cannot reach server eu-2"):
            servers.connect("eu-2")
    assert len(tries) == 1  # the asks after the first got its failure at once
    clock.advance(RETRY_AFTER_SECONDS)
    with pytest.raises(ServerError):
        servers.connect("eu-2")
    assert len(tries) == 2
    clock.advance(RETRY_AFTER_SECONDS)
    assert servers.connect("eu-2") is swarm  # back: connected and kept
    assert servers.connect("eu-2") is swarm and len(tries) == 3


def test_a_server_still_connecting_holds_up_no_other():
    started, release = threading.Event(), threading.Event()
    near = fake_swarm()

    def slow():
        started.set()
        release.wait(5)
        raise ServerError("cannot reach server eu-2 over SSH (timed out)")

    servers = Servers({"eu-2": slow, "eu-1": lambda: near})
    waiting = threading.Thread(target=lambda: pytest.raises(ServerError, servers.connect, "eu-2"))
    waiting.start()
    try:
        assert started.wait(5)
        got: list[object] = []
        other = threading.Thread(target=lambda: got.append(servers.connect("eu-1")))
        other.start()
        other.join(2)
        assert got == [near]  # while eu-2's connect still hangs
    finally:
        release.set()
        waiting.join(5)
