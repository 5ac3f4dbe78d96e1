"""A server that did not answer: when its outage began, why, and when it was last tried.

Each process keeps its own (core/swarm/servers.py), and a ``Memory`` shares them between
processes (the store: core/servers/remote.py): a one-shot ``shipbot chat`` is told what
``serve`` or the command before it learned ``RETRY_SECONDS`` ago at most, instead of
paying the connect time-out again. The reply says since when and when it was last tried.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from core.errors import EngineUnavailable

RETRY_SECONDS = 30.0  # an unreachable server is dialled again at most this often
# failures further apart than this are two outages (the server answered in between, or
# nobody asked): the later one does not keep the earlier one's start
CONTINUOUS_SECONDS = 4 * RETRY_SECONDS


@dataclass(frozen=True)
class Recorded:
    """An outage as processes share it, in wall time."""

    since: float  # the first failure
    error: str  # the last failure's words
    tried: float  # the last failure


@dataclass
class Outage:
    since: float  # wall time of the first failure
    error: str
    tried: float  # wall time of the last connect that failed
    retry_at: float  # monotonic: when a connect is tried again
    redialing: bool = False

    def words(self, now: float) -> str:
        stamp = dt.datetime.fromtimestamp(self.since, dt.UTC).strftime("%H:%M:%S UTC")
        ago = max(0, round(now - self.tried))
        return (
            f"{self.error} (unreachable since {stamp}; last tried {ago}s ago, not tried "
            f"again for this: at most every {RETRY_SECONDS:g}s)"
        )

    def recorded(self) -> Recorded:
        return Recorded(self.since, self.error, self.tried)


class ServerAway(EngineUnavailable):
    """A server's remembered outage, told without dialling it; ``outage.error`` is the
    failure itself (an alert says since when in its own words)."""

    def __init__(self, outage: Outage, now: float) -> None:
        super().__init__(outage.words(now))
        self.outage = outage


class Memory(Protocol):
    """Outages shared between processes; blocking (called from the dialling thread)."""

    def recall(self, server: str) -> Recorded | None: ...
    def record(self, server: str, outage: Recorded) -> None: ...
    def clear(self, server: str) -> None: ...


@runtime_checkable
class Severable(Protocol):
    """A client whose connection can drop under it (a remote engine over SSH)."""

    def lost(self) -> bool: ...


def lost(client: object) -> bool:
    """Whether a kept client's connection dropped (its host stopped): it is dialled again."""
    return isinstance(client, Severable) and client.lost()
