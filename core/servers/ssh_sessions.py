"""The sessions open on one SSH connection, counted as sshd counts them.

sshd allows ``MaxSessions`` (10 by default) sessions per connection, and a session holds
its place until its command has exited and its channel is closed on both sides. So a
session is counted here from the moment it is asked for until sshd has closed its channel
(paramiko marks it closed when sshd's close arrives), and a session is let go by ending its
input (EOF), never by closing it first: sshd answers a close at once while the command,
and its place, live on, and the count would lie. Told EOF, ``docker system dial-stdio``
ends its engine connection and exits, and only then does sshd close the channel.

``open`` waits while ``limit`` sessions are counted. A refusal all the same (another client
on the same login and connection, or sshd set lower) is asked again for
``RETRY_SECONDS``, then stands; ``refused`` says whether an error is one.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Protocol

import paramiko

from core.clock import SYSTEM, Clock

WAIT_SECONDS = 60.0  # for a free place under the limit
RETRY_SECONDS = 10.0  # a session sshd refused is asked for again this long
GAP = 0.05  # between two looks at the count, or two asks after a refusal
LET_GO_SECONDS = 30.0  # a session told EOF that sshd has not closed by then is closed


class Opener(Protocol):
    def open_session(self) -> paramiko.Channel: ...


class SessionsBusy(paramiko.SSHException):
    """Every place under the limit stayed taken for the whole wait."""


def refused(exc: BaseException) -> bool:
    """sshd refused to open a session. paramiko says so with a ChannelException, or, when
    threads open sessions at once, one of them takes the others' exception and they get
    a bare "Unable to open channel." instead."""
    return isinstance(exc, paramiko.ChannelException) or str(exc) == "Unable to open channel."


class Sessions:
    """The sessions of one SSH connection (``transport``), at most ``limit`` at once."""

    def __init__(
        self, transport: Opener, limit: int, wait: float = WAIT_SECONDS, clock: Clock = SYSTEM
    ) -> None:
        self.transport = transport
        self.limit = limit
        self.wait = wait
        self.clock = clock
        self._changed = threading.Condition()
        self._asking = 0  # opens under way
        # in use: held weakly, so one its user dropped is closed by paramiko and uncounted
        self._open: weakref.WeakSet[paramiko.Channel] = weakref.WeakSet()
        self._ending: dict[paramiko.Channel, float] = {}  # told EOF: when, by this clock

    def count(self) -> int:
        """Sessions sshd holds for this connection now, or is about to."""
        with self._changed:
            return self._count()

    def _count(self) -> int:
        now = self.clock.monotonic()
        for channel, since in list(self._ending.items()):
            while channel.recv_ready():  # what is still sent is read, so nothing stalls
                channel.recv(1 << 16)
            if not channel.closed and now - since > LET_GO_SECONDS:
                channel.close()  # stuck: sshd answers at once, its command is on its own
            if channel.closed:
                del self._ending[channel]
                channel.close()  # its pipe, if a poll made one
        in_use = sum(1 for channel in self._open if not channel.closed)
        return self._asking + in_use + len(self._ending)

    def open(self, command: str, timeout: float | None) -> paramiko.Channel:
        """A session running ``command``, once there is a place for it."""
        deadline = self.clock.monotonic() + self.wait
        with self._changed:
            while self._count() >= self.limit:
                if self.clock.monotonic() >= deadline:
                    raise SessionsBusy(
                        f"all {self.limit} sessions stayed in use for {self.wait:g}s"
                    )
                self._changed.wait(GAP)  # sshd's close comes with no signal of ours
            self._asking += 1
        try:
            channel = self._ask()
            channel.settimeout(timeout)
            channel.exec_command(command)
        except BaseException:
            with self._changed:
                self._asking -= 1
            raise
        with self._changed:
            self._asking -= 1
            self._open.add(channel)
        return channel

    def _ask(self) -> paramiko.Channel:
        deadline = self.clock.monotonic() + RETRY_SECONDS
        while True:
            try:
                return self.transport.open_session()
            except paramiko.SSHException as exc:
                if not refused(exc) or self.clock.monotonic() >= deadline:
                    raise
                time.sleep(GAP)

    def let_go(self, channel: paramiko.Channel) -> None:
        """Done with ``channel``: EOF to its command; counted until sshd closes it."""
        with self._changed:
            self._open.discard(channel)
            if channel.closed:
                channel.close()
                return
            try:
                channel.shutdown_write()
            except (OSError, EOFError, paramiko.SSHException):
                channel.close()  # the connection is gone, and its sessions with it
                return
            self._ending[channel] = self.clock.monotonic()
            self._changed.notify_all()
