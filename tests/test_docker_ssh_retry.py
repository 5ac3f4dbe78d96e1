"""A session sshd refuses (it still counts one just given back) is asked for again, for a
bounded time; any other failure is not retried."""

from __future__ import annotations

import paramiko
import pytest

from core.servers.docker_ssh import SESSION_RETRY_PAUSE, retry_refused_sessions
from tests.clock import ManualClock


def sender(failures: list[BaseException], answer: str = "ok"):
    calls: list[int] = []

    def send() -> str:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return answer

    return send, calls


def test_a_refused_session_is_asked_for_again_until_sshd_gives_one():
    clock = ManualClock()
    refused = paramiko.ChannelException(2, "Connect failed")
    # the other threads opening at that moment get paramiko's bare words for it
    send, calls = sender([refused, paramiko.SSHException("Unable to open channel.")])
    start = clock.monotonic()
    assert retry_refused_sessions(send, 5.0, clock.advance, clock.monotonic) == "ok"
    assert len(calls) == 3
    assert clock.monotonic() - start == pytest.approx(2 * SESSION_RETRY_PAUSE)


def test_refusals_past_the_bound_raise_and_other_failures_are_not_retried():
    clock = ManualClock()
    send, calls = sender([paramiko.ChannelException(2, "Connect failed")] * 100)
    with pytest.raises(paramiko.ChannelException):
        retry_refused_sessions(send, 1.0, clock.advance, clock.monotonic)
    assert len(calls) == 1 + round(1.0 / SESSION_RETRY_PAUSE)
    send, calls = sender([paramiko.SSHException("gone")])
    with pytest.raises(paramiko.SSHException):
        retry_refused_sessions(send, 5.0, clock.advance, clock.monotonic)
    assert len(calls) == 1
