"""The sessions of one SSH connection (core/servers/ssh_sessions.py): counted from the ask
until sshd has closed them, let go by EOF (never closed first), at most ``limit`` at once;
sshd's refusal, however paramiko reports it, is named as the session limit and asked for
again for a while; other SSH failures are not."""

from __future__ import annotations

import threading

import paramiko
import pytest

from core.servers import ssh_sessions
from core.servers.docker_ssh import session_words
from core.servers.ssh_sessions import Sessions, SessionsBusy, refused
from tests.clock import ManualClock


class Channel:
    """What paramiko's channel does here: EOF sent by ``shutdown_write``, ``closed`` once
    either side closed (here: ``sshd_closes``, or ``close`` of ours)."""

    def __init__(self) -> None:
        self.closed = False
        self.eof_sent = False
        self.closed_by_us = False
        self.unread = [b"rest of a response"]

    def settimeout(self, seconds: float | None) -> None:
        self.timeout = seconds

    def exec_command(self, command: str) -> None:
        self.command = command

    def shutdown_write(self) -> None:
        self.eof_sent = True

    def recv_ready(self) -> bool:
        return bool(self.unread)

    def recv(self, size: int) -> bytes:
        return self.unread.pop()

    def sshd_closes(self) -> None:
        self.closed = True

    def close(self) -> None:
        self.closed_by_us = self.closed_by_us or not self.closed
        self.closed = True


class Transport:
    """Refuses the first ``refusals`` sessions the way ``failure`` says, then opens them."""

    def __init__(self, refusals: int = 0, failure: Exception | None = None) -> None:
        self.refusals = refusals
        self.failure = failure
        self.asked = 0

    def open_session(self) -> Channel:
        self.asked += 1
        if self.asked <= self.refusals:
            raise self.failure
        return Channel()


REFUSALS = [
    paramiko.ChannelException(2, "Connect failed"),
    paramiko.SSHException("Unable to open channel."),  # another thread took the exception
]


@pytest.mark.parametrize("failure", REFUSALS)
def test_a_refusal_is_named_as_sshds_session_limit(failure):
    assert refused(failure)
    words = session_words("eu-1", failure)
    assert words.startswith("sshd on server eu-1 refused a new SSH session")
    assert "MaxSessions" in words and "dockerd" not in words


def test_other_ssh_failures_are_not_refusals():
    lost = paramiko.SSHException("SSH session not active")
    assert not refused(lost)
    assert session_words("eu-1", lost) == "the SSH connection to server eu-1 failed (SSH error)"


@pytest.mark.parametrize("failure", REFUSALS)
def test_a_refused_session_is_asked_for_again(failure, monkeypatch):
    monkeypatch.setattr(ssh_sessions, "GAP", 0.01)
    transport = Transport(3, failure)
    channel = Sessions(transport, 8).open("docker system dial-stdio", 5)
    assert transport.asked == 4
    assert channel.command == "docker system dial-stdio" and channel.timeout == 5


def test_a_refusal_that_lasts_stands(monkeypatch):
    monkeypatch.setattr(ssh_sessions, "RETRY_SECONDS", 0.05)
    monkeypatch.setattr(ssh_sessions, "GAP", 0.01)
    transport = Transport(10_000, REFUSALS[0])
    sessions = Sessions(transport, 8)
    with pytest.raises(paramiko.ChannelException):
        sessions.open("true", 5)
    assert 1 < transport.asked < 100
    assert sessions.count() == 0


def test_a_lost_connection_is_not_retried():
    transport = Transport(1, paramiko.SSHException("SSH session not active"))
    with pytest.raises(paramiko.SSHException, match="not active"):
        Sessions(transport, 8).open("true", 5)
    assert transport.asked == 1


def test_a_session_let_go_is_told_eof_and_counted_until_sshd_closes_it():
    sessions = Sessions(Transport(), 8)
    channel = sessions.open("true", 5)
    assert sessions.count() == 1
    sessions.let_go(channel)
    assert channel.eof_sent and not channel.closed_by_us
    assert sessions.count() == 1  # sshd still holds it: its command has not exited
    assert channel.unread == []  # what still came is read, so the command is not stalled
    channel.sshd_closes()
    assert sessions.count() == 0


def test_a_session_sshd_closed_in_use_is_no_longer_counted():
    sessions = Sessions(Transport(), 8)
    kept = sessions.open("true", 5)
    ended = sessions.open("true", 5)
    ended.sshd_closes()
    assert sessions.count() == 1
    sessions.let_go(ended)
    assert not ended.eof_sent and sessions.count() == 1
    assert not kept.closed


def test_a_session_past_the_limit_waits_for_sshd_to_close_one(monkeypatch):
    monkeypatch.setattr(ssh_sessions, "GAP", 0.01)
    sessions = Sessions(Transport(), 2)
    first, second = sessions.open("true", 5), sessions.open("true", 5)
    sessions.let_go(first)
    got: list[Channel] = []
    third = threading.Thread(target=lambda: got.append(sessions.open("true", 5)))
    third.start()
    third.join(0.2)
    assert got == [] and sessions.count() == 2  # let go, but sshd has not closed it
    first.sshd_closes()
    third.join(5)
    assert len(got) == 1 and sessions.count() == 2
    assert not second.closed


def test_no_place_for_the_whole_wait_is_busy():
    clock = ManualClock()
    sessions = Sessions(Transport(), 1, wait=0.0, clock=clock)
    held = sessions.open("true", 5)
    with pytest.raises(SessionsBusy, match="all 1 sessions stayed in use for 0s"):
        sessions.open("true", 5)
    assert not held.closed
    assert "SSH sessions to server eu-1 stayed busy" in session_words("eu-1", SessionsBusy())


def test_a_session_sshd_never_closes_is_closed_after_a_while():
    clock = ManualClock()
    sessions = Sessions(Transport(), 8, clock=clock)
    channel = sessions.open("true", 5)
    sessions.let_go(channel)
    clock.advance(ssh_sessions.LET_GO_SECONDS - 1)
    assert sessions.count() == 1 and not channel.closed
    clock.advance(2)
    assert sessions.count() == 0 and channel.closed_by_us


def test_an_event_stream_over_ssh_is_ended_by_its_sessions_eof():
    """docker-py refuses to cancel a stream read over SSH; ``close`` then ends the SSH
    session's input: the engine ends the stream at once, and sshd closes the session once
    dial-stdio has exited (a channel closed first would be uncounted while it lingers)."""
    from types import SimpleNamespace

    import docker.errors

    from core.swarm.watch_api import DockerEvents

    closed: list[str] = []

    class Refusing:
        def __init__(self) -> None:
            channel = SimpleNamespace(shutdown_write=lambda: closed.append("eof"))
            fp = SimpleNamespace(channel=channel)
            self._response = SimpleNamespace(raw=SimpleNamespace(_fp=SimpleNamespace(fp=fp)))

        def close(self) -> None:
            raise docker.errors.DockerException(
                "Cancellable streams not supported for the SSH protocol"
            )

    events = DockerEvents.__new__(DockerEvents)
    events._stream = Refusing()  # noqa: SLF001
    events.close()
    assert closed == ["eof"]
