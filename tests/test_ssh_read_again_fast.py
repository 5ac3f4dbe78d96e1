"""A kept SSH session that ended while it waited in the pool: a read is asked once more on
another session, a write is not repeated (core/servers/docker_ssh.py, READ_AGAIN). The
sessions are socket pairs whose far ends a thread serves as the engine would."""

from __future__ import annotations

import socket
import threading

import pytest
import requests
import urllib3

from core.servers.docker_ssh import BoundedSessions

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class FakeSessions:
    """Each session a socket pair; the engine's end answers each request once, then, for
    the first session only, ends without answering the next (the engine's end went away)."""

    limit = 2

    def __init__(self) -> None:
        self.opened = 0
        self.requests: list[bytes] = []
        self.threads: list[threading.Thread] = []

    def open(self, command: str, timeout: float | None) -> socket.socket:
        ours, theirs = socket.socketpair()
        self.opened += 1
        thread = threading.Thread(target=self._serve, args=(theirs, self.opened == 1))
        thread.start()
        self.threads.append(thread)
        return ours

    def _serve(self, sock: socket.socket, ends_after_one: bool) -> None:
        with sock:
            answered = 0
            while data := sock.recv(65536):
                self.requests.append(data.split(b"\r\n", 1)[0])
                if ends_after_one and answered == 1:
                    return  # closes without a response
                sock.sendall(OK)
                answered += 1

    def let_go(self, channel: socket.socket) -> None:
        channel.close()


def pool(sessions: FakeSessions) -> BoundedSessions:
    return BoundedSessions(sessions, 5)  # type: ignore[arg-type]


def ask(made: BoundedSessions, method: str) -> int:
    return made.urlopen(
        method, "/v1.41/services/x", retries=False, redirect=False, timeout=5
    ).status


def test_a_read_on_a_session_that_ended_in_the_pool_is_asked_again_once():
    sessions = FakeSessions()
    made = pool(sessions)
    assert ask(made, "GET") == 200  # session 1, kept in the pool
    assert ask(made, "GET") == 200  # session 1 ends unanswered: asked again on session 2
    assert sessions.opened == 2
    assert sessions.requests == [b"GET /v1.41/services/x HTTP/1.1"] * 3
    made.close()
    for thread in sessions.threads:
        thread.join(5)


def test_a_write_is_never_repeated():
    sessions = FakeSessions()
    made = pool(sessions)
    assert ask(made, "GET") == 200
    with pytest.raises((urllib3.exceptions.ProtocolError, requests.exceptions.ConnectionError)):
        ask(made, "POST")  # it may have been done: said, not repeated
    assert sessions.opened == 1
    get, post = b"GET /v1.41/services/x HTTP/1.1", b"POST /v1.41/services/x HTTP/1.1"
    assert sessions.requests == [get, post]
    made.close()
    for thread in sessions.threads:
        thread.join(5)
