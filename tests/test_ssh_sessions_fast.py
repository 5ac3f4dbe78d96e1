"""sshd's refusal of a session, however paramiko reports it, is named as the session limit
and asked for again for a while (core/servers/docker_ssh.py); other SSH failures are not."""

from __future__ import annotations

import paramiko
import pytest

from core.servers import docker_ssh
from core.servers.docker_ssh import PatientSession, refused, session_words


class Transport:
    """Refuses the first ``refusals`` sessions the way ``failure`` says, then opens them."""

    def __init__(self, refusals: int, failure: Exception) -> None:
        self.refusals = refusals
        self.failure = failure
        self.asked = 0

    def open_session(self):
        self.asked += 1
        if self.asked <= self.refusals:
            raise self.failure
        return Channel()


class Channel:
    def settimeout(self, seconds: float) -> None:
        self.timeout = seconds

    def exec_command(self, command: str) -> None:
        self.command = command


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
    assert session_words("eu-1", lost) == (
        "the SSH connection to server eu-1 failed: SSH session not active"
    )


@pytest.mark.parametrize("failure", REFUSALS)
def test_a_refused_session_is_asked_for_again(failure, monkeypatch):
    monkeypatch.setattr(docker_ssh, "SESSION_RETRY_GAP", 0.01)
    transport = Transport(3, failure)
    session = PatientSession(transport, 5, None)
    session.connect()
    assert transport.asked == 4
    assert session.sock.command == "docker system dial-stdio"


def test_a_refusal_that_lasts_stands(monkeypatch):
    monkeypatch.setattr(docker_ssh, "SESSION_RETRY_SECONDS", 0.05)
    monkeypatch.setattr(docker_ssh, "SESSION_RETRY_GAP", 0.01)
    transport = Transport(10_000, REFUSALS[0])
    with pytest.raises(paramiko.ChannelException):
        PatientSession(transport, 5, None).connect()
    assert 1 < transport.asked < 100


def test_a_lost_connection_is_not_retried(monkeypatch):
    transport = Transport(1, paramiko.SSHException("SSH session not active"))
    with pytest.raises(paramiko.SSHException, match="not active"):
        PatientSession(transport, 5, None).connect()
    assert transport.asked == 1


def test_an_event_stream_over_ssh_is_closed_by_its_channel():
    """docker-py refuses to cancel a stream read over SSH; ``close`` then closes the SSH
    session's channel, which ends the reading thread's wait at once."""
    from types import SimpleNamespace

    import docker.errors

    from core.swarm.watch_api import DockerEvents

    closed: list[str] = []

    class Refusing:
        def __init__(self) -> None:
            channel = SimpleNamespace(close=lambda: closed.append("channel"))
            fp = SimpleNamespace(channel=channel)
            self._response = SimpleNamespace(raw=SimpleNamespace(_fp=SimpleNamespace(fp=fp)))

        def close(self) -> None:
            raise docker.errors.DockerException(
                "Cancellable streams not supported for the SSH protocol"
            )

    events = DockerEvents.__new__(DockerEvents)
    events._stream = Refusing()  # noqa: SLF001
    events.close()
    assert closed == ["channel"]
