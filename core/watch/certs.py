"""The certificate watcher: what the edge serves for every routed domain, compared with what
was seen last time, becomes posts for the ``certs`` channels.

``step`` is the whole state machine and is pure (facts + previous state + now → posts + new
state); ``CertWatch.check`` is the executor around it: it reads the domains from shipbot's
services, shakes hands with the proxy for each, reads Traefik's log for ACME outcomes, and
keeps the state in the store, so each alert is posted once and closed by a recovery post
across restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from core.clock import SYSTEM, Clock
from core.edge.certs import (
    AcmeOutcome,
    CertError,
    CertFacts,
    acme_outcomes,
    probe,
    routed_domains,
)
from core.errors import CoreError
from core.host_rules import probe_name
from core.ownership import owner
from core.plane import Plane
from core.servers import where
from core.swarm import SwarmClient

ALERT_DAYS = 14
# Let's Encrypt's certificates live 90 days and the alert comes 14 days before the end; a
# shorter-lived certificate (LE's six-day ones, pebble's minutes) gets the same share of its
# life, or the alert would stand from the moment it was issued.
_ALERT_SHARE = 14 / 90
EXPIRY = "expiry"
FAILED = "failed"
AWAY = "away"  # a server whose proxy could not be read (its row is AWAY_MARK + server)
AWAY_MARK = "@"  # never starts a domain
LOG_TAIL = 2000


@dataclass(frozen=True)
class DomainFacts:
    """One routed domain as the edge shows it now."""

    app: str
    env: str
    domain: str
    served: CertFacts | None  # the certificate served for it, None if the handshake failed
    outcome: AcmeOutcome | None = None  # the latest ACME outcome in Traefik's log
    server: str = ""  # whose proxy serves it ("": the one reader's, unnamed)

    @property
    def cert(self) -> CertFacts | None:
        """The served certificate if it is one for this domain (not Traefik's default)."""
        return self.served if self.served and self.served.covers(self.domain) else None


@dataclass(frozen=True)
class CertState:
    """What was last seen and said about a domain."""

    app: str
    env: str
    domain: str
    serial: str = ""
    not_after: float | None = None
    alert: str = ""  # "", EXPIRY or FAILED: the alert posted and not yet closed
    error: str = ""


@dataclass(frozen=True)
class Post:
    app: str
    env: str
    text: str


def _until(ts: dt.datetime) -> str:
    return ts.strftime("%Y-%m-%d %H:%M UTC")


def expiry_window(cert: CertFacts, days: int = ALERT_DAYS) -> dt.timedelta:
    """How long before ``not_after`` an unrenewed certificate is alerted on."""
    return min(dt.timedelta(days=days), (cert.not_after - cert.not_before) * _ALERT_SHARE)


def standing_error(facts: DomainFacts) -> str:
    """The ACME error that stands for this domain now, or ''. A failure older than the
    certificate served was followed by success."""
    outcome, cert = facts.outcome, facts.cert
    if outcome is None or outcome.ok:
        return ""
    if cert is not None and outcome.at <= cert.not_before:
        return ""
    return outcome.error or "(Traefik logged no error text)"


def step_domain(
    facts: DomainFacts,
    prev: CertState,
    now: dt.datetime,
    alert_days: int = ALERT_DAYS,
    own: str = "",
) -> tuple[list[str], CertState]:
    """One domain's posts and new state; a domain served by a server other than ``own``
    (the control plane's) is named with its server."""
    posts: list[str] = []
    state = dataclasses.replace(prev, app=facts.app, env=facts.env)
    cert, domain = facts.cert, facts.domain
    if facts.server and facts.server != own:
        domain = f"{domain} on server {facts.server}"
    error = standing_error(facts)
    if cert is not None and cert.serial != prev.serial:
        closes = {
            EXPIRY: "; the expiry alert is closed",
            FAILED: "; the failed issuance is resolved",
        }.get(prev.alert, "")
        if prev.serial:
            was = dt.datetime.fromtimestamp(prev.not_after or 0, dt.UTC)
            posts.append(
                f"🔁 certificate renewed for {domain}, valid until {_until(cert.not_after)} "
                f"(was until {_until(was)}; serial {cert.serial}){closes}"
            )
        else:
            posts.append(
                f"🔒 certificate issued for {domain}, valid until {_until(cert.not_after)} "
                f"(by {cert.issuer}; serial {cert.serial}){closes}"
            )
        state = dataclasses.replace(
            state, serial=cert.serial, not_after=cert.not_after.timestamp(), alert="", error=""
        )
    elif state.alert == FAILED and not error and cert is not None:
        posts.append(
            f"✅ certificate for {domain} is served again, valid until {_until(cert.not_after)}; "
            "the failed issuance is resolved"
        )
        state = dataclasses.replace(state, alert="", error="")
    if error and state.alert != FAILED:
        posts.append(f"❌ certificate for {domain} could not be obtained: {error}")
        state = dataclasses.replace(state, alert=FAILED, error=error)
    elif (
        cert is not None
        and not state.alert
        and cert.not_after - now <= expiry_window(cert, alert_days)
    ):
        left = cert.days_left(now)
        when = "has expired" if left < 0 else f"expires in {left} days"
        posts.append(
            f"⚠️ certificate for {domain} {when} ({_until(cert.not_after)}) and has not been "
            "renewed: check the proxy's log (`logs` of the edge service) and the domain's DNS"
        )
        state = dataclasses.replace(state, alert=EXPIRY)
    return posts, state


def step(
    facts: Iterable[DomainFacts],
    previous: Mapping[str, CertState],
    now: dt.datetime,
    alert_days: int = ALERT_DAYS,
    away: Mapping[str, str] | None = None,
    own: str = "",
    servers: Collection[str] | None = None,
) -> tuple[list[Post], dict[str, CertState]]:
    """Every domain's posts, in domain order, and the state to keep. A domain the handshake
    could not reach keeps its state (the proxy being down is not the certificate's news);
    a domain no longer routed is forgotten, unless a server was ``away`` (server → why it
    could not be read): its domains are not known this round, so none is forgotten. A
    server away is named once per outage, and once when it answers again
    (``step_away``)."""
    posts: list[Post] = []
    states: dict[str, CertState] = {}
    for item in sorted(facts, key=lambda f: f.domain):
        prev = previous.get(item.domain) or CertState(item.app, item.env, item.domain)
        if item.served is None:
            states[item.domain] = prev
            continue
        texts, states[item.domain] = step_domain(item, prev, now, alert_days, own)
        posts.extend(Post(item.app, item.env, text) for text in texts)
    if away:
        for domain, prev in previous.items():
            if not domain.startswith(AWAY_MARK):
                states.setdefault(domain, prev)
    told, outages = step_away(away or {}, previous, servers)
    return told + posts, states | outages


def step_away(
    away: Mapping[str, str],
    previous: Mapping[str, CertState],
    servers: Collection[str] | None = None,
) -> tuple[list[Post], dict[str, CertState]]:
    """The posts and kept rows of servers whose proxy could not be read: one post when an
    outage starts, one when it ends (rows ``@SERVER`` in the same table as the domains).
    A server no longer among ``servers`` (removed) is dropped without a word."""
    posts: list[Post] = []
    states: dict[str, CertState] = {}
    for server, why in sorted(away.items()):
        key = AWAY_MARK + server
        states[key] = previous.get(key) or CertState("", "", key, alert=AWAY, error=why)
        if key not in previous:
            posts.append(
                Post(
                    "",
                    "",
                    f"⚠️ certificates not checked on server {server}: {why}; the other "
                    "servers' still are",
                )
            )
    for key in sorted(previous):
        server = key.removeprefix(AWAY_MARK)
        if key.startswith(AWAY_MARK) and server not in away:
            if servers is not None and server not in servers:
                continue
            posts.append(
                Post(
                    "", "", f"✅ server {server} answers again: its certificates are checked again"
                )
            )
    return posts, states


Publish = Callable[[Post], None]


@dataclass(frozen=True)
class Reading:
    """One round's facts; the servers that could not be read (server → why), and the
    servers read (None: one edge, unnamed)."""

    facts: list[DomainFacts]
    away: dict[str, str] = dataclasses.field(default_factory=dict)
    servers: tuple[str, ...] | None = None
    own: str = ""


class Reader(Protocol):
    async def read(self) -> Reading: ...


class CertStore(Protocol):
    """What the watcher needs of the store (``core.store.certs.CertWatchTable``)."""

    def cert_states(self) -> list[dict[str, Any]]: ...
    def save_cert_states(
        self, rows: list[dict[str, Any]], inside: Callable[[], None] = ...
    ) -> None: ...


class EdgeReader:
    """Reads the edge: domains from shipbot's services, a handshake per domain, Traefik's
    log for ACME outcomes."""

    def __init__(
        self,
        client: Callable[[], Awaitable[SwarmClient]],
        *,
        addresses: Sequence[str],
        https_port: int,
        proxy_service: str,
        timeout: float = 5.0,
        owns: Callable[[Mapping[str, Any]], bool] = lambda service: True,
    ) -> None:
        self._client = client
        self.owns = owns  # this control plane's services only, on a shared swarm
        self.addresses = tuple(addresses)  # tried in order; the first to shake hands counts
        self.https_port = https_port
        self.proxy_service = proxy_service
        self.timeout = timeout

    @classmethod
    def of(
        cls, plane: Plane, server: str | None = None, addresses: Sequence[str] = ()
    ) -> EdgeReader:
        """The edge of ``server`` (the control plane's own by default), its handshakes
        made at ``addresses`` (``edge.address`` by default): each server's own Traefik."""
        connect = (
            (lambda: plane.servers.client(plane.server))
            if server is None
            else (lambda: where.client(plane, server, "the proxy"))
        )
        return cls(
            connect,
            addresses=addresses or (plane.edge.address,),
            https_port=plane.edge.https_port,
            proxy_service=plane.edge.service,
            owns=owner(plane),
        )

    async def read(self) -> Reading:
        return Reading(await self.facts())

    async def facts(self) -> list[DomainFacts]:
        client = await self._client()
        services = await asyncio.to_thread(client.services)
        routed = routed_domains(s for s in services if self.owns(s))
        if not routed:
            return []
        outcomes: dict[str, AcmeOutcome] = {}
        # no proxy (yet) or an engine hiccup: the handshakes still tell what is served
        with contextlib.suppress(CoreError):
            logs = await asyncio.to_thread(client.service_logs, self.proxy_service, LOG_TAIL)
            outcomes = acme_outcomes(line for _, _, line in logs)
        served = await asyncio.gather(*(self._probe(r.domain) for r in routed))
        return [
            DomainFacts(r.app, r.env, r.domain, cert, outcomes.get(r.domain))
            for r, cert in zip(routed, served, strict=True)
        ]

    async def _probe(self, domain: str) -> CertFacts | None:
        # a wildcard is asked for by one name under it (SNI names one host)
        name = probe_name(domain)
        for address in self.addresses:
            try:
                return await asyncio.to_thread(probe, address, self.https_port, name, self.timeout)
            except CertError:
                continue
        return None


class CertWatch:
    """Checks the edge's certificates and publishes what changed (see ``step``)."""

    def __init__(
        self,
        reader: Reader,
        store: CertStore,
        publish: Publish,
        *,
        alert_days: int = ALERT_DAYS,
        clock: Clock = SYSTEM,
    ) -> None:
        self.reader = reader
        self.store = store
        self.publish = publish
        self.alert_days = alert_days
        self.clock = clock

    async def check(self) -> list[Post]:
        """One round: read, compare, keep, publish. Returns what was published."""
        read = await self.reader.read()
        rows = await asyncio.to_thread(self.store.cert_states)
        previous = {row["domain"]: CertState(**row) for row in rows}
        now = self.clock.now()
        posts, states = step(
            read.facts, previous, now, self.alert_days, read.away, read.own, read.servers
        )

        def publish_all() -> None:
            for post in posts:
                self.publish(post)

        # the new state and the posts' outbox rows are written in one transaction: a crash
        # neither loses an alert nor repeats one
        await asyncio.to_thread(
            self.store.save_cert_states,
            [dataclasses.asdict(s) for s in states.values()],
            publish_all,
        )
        return posts
