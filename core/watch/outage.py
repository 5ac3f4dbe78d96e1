"""A server that did not answer a whole alert round: one alert per outage, naming it, and
(``core.watch.alert_rules.step``) one recovery post at the first round that reads it again.
The apps on it keep serving: Swarm runs them without shipbot."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from core.events import Outcome
from core.watch.alert_rules import (
    OPEN,
    SERVER_AWAY,
    Alert,
    Post,
    alert_key,
    fields_of,
    since_words,
)


def away_step(
    server: str, error: str, previous: Mapping[str, Alert], now: float
) -> tuple[list[Post], dict[str, Alert]]:
    """A round that could not read ``server`` at all: one alert per outage, opened at its
    first such round (``step`` closes it at the first round that reads the server again);
    every other alert is kept as it stood."""
    key = alert_key(server, SERVER_AWAY, server)
    kept = dict(previous)
    standing = previous.get(key)
    if standing is not None and standing.status == OPEN:
        kept[key] = dataclasses.replace(standing, last_seen=now)
        return [], kept
    title = f"🔌 server {server} unreachable since {since_words(now)}: {error}"
    kept[key] = Alert(
        key, server, SERVER_AWAY, server, None, None, OPEN, now, now, now, None, title
    )
    fields = fields_of(server, None, None)
    what = "its apps keep serving as Swarm runs them; shipbot cannot see or change them"
    return [Post(None, None, Outcome(False, title, [what], fields))], kept
