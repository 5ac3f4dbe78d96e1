"""Executors of the edge: set the proxy up, say how it runs, probe an app through it.

The proxy's spec comes from the pure builder in ``core.edge.proxy``; this module only posts
it through the swarm client and watches the result.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import http.client
import re
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from core.clock import Clock
from core.config import EdgeConfig
from core.edge.acme import acme_mounts
from core.edge.certs import parse_certificate
from core.edge.labels import ENTRY_HTTPS, router_name
from core.edge.networks import routed_networks
from core.edge.proxy import LABEL_DIGEST, LABEL_EDGE, proxy_spec
from core.edge.ready import POLL_SECONDS as READY_POLL_SECONDS
from core.edge.ready import READY_SECONDS, edge_ready
from core.errors import CoreError
from core.events import Event, Outcome, Progress
from core.host_rules import hosts_in, probe_name
from core.names import service_name
from core.ownership import owner
from core.plane import Plane
from core.servers import where
from core.swarm import SwarmClient, running_tasks

POLL_SECONDS = 0.5
START_SECONDS = 90.0
VERSION_LABEL = "org.opencontainers.image.version"
PREFIX_RE = re.compile(r"PathPrefix\(`([^`]+)`\)")


class EdgeError(CoreError):
    """The proxy cannot be set up or read."""


@dataclass(frozen=True)
class ProxyStatus:
    service: str
    image: str
    ports: str
    running: int
    desired: int
    version: str
    state: str  # the last task's state and error, for a proxy that does not run
    server: str = ""  # the server it runs on


@dataclass(frozen=True)
class Route:
    env: str
    url: str
    answer: str  # "200 OK", "404 Not Found", or why nothing answered
    certificate: str = ""  # over HTTPS: who issued what the edge served, until when


def certificate_note(der: bytes | None, domain: str, now: dt.datetime) -> str:
    """The served certificate in a few words: its issuer and life, or that none is issued."""
    if not der:
        return "none served"
    facts = parse_certificate(der)
    if not facts.covers(domain):
        return f"none issued yet (the edge serves {facts.subject or 'another name'}'s)"
    until = facts.not_after.strftime("%Y-%m-%d")
    return f"{facts.issuer}, valid until {until} ({facts.days_left(now)} days)"


def _object_ids(swarm: SwarmClient, config: EdgeConfig) -> dict[str, str]:
    """The ids of the configs and secrets edge.acme names; each must exist already."""
    ids = {}
    wanted = acme_mounts(config.acme)
    for kind, key in (("config", "ConfigName"), ("secret", "SecretName")):
        for item in wanted[f"{kind.capitalize()}s"]:
            name = str(item[key])
            found = swarm.object_id(kind, name)
            if found is None:
                raise EdgeError(
                    f"edge.acme names the Swarm {kind} {name}, which does not exist: "
                    f"create it first (docker {kind} create {name} FILE)"
                )
            ids[name] = found
    return ids


def _owned(current: dict[str, Any] | None, name: str) -> None:
    if current is not None and LABEL_EDGE not in (current["Spec"].get("Labels") or {}):
        raise EdgeError(
            f"a service named {name} exists and is not shipbot's proxy: remove it, or set "
            "another edge.service in shipbot.yml"
        )


async def setup(plane: Plane, server: str | None = None) -> AsyncIterator[Event]:
    """Create or update the proxy service of ``server`` (the control plane's own by
    default; each server runs its own) — nothing when its spec is unchanged — then wait
    until its task runs and answers its health check. Only the control plane's own proxy
    is probed at ``edge.address`` for its routes."""
    config = plane.edge
    name, swarm = await where.reach(plane, server, "the proxy")
    here = name == plane.server
    await asyncio.to_thread(swarm.ensure_network)
    desired = await asyncio.to_thread(_desired, plane, swarm)
    current = await asyncio.to_thread(swarm.inspect_service, config.service)
    _owned(current, config.service)
    started = plane.clock.monotonic()
    if current is None:
        yield Progress(f"creating service {config.service} ({config.image})")
        await asyncio.to_thread(swarm.create_service, desired)
        verb = "created"
    elif current["Spec"]["Labels"].get(LABEL_DIGEST) == desired["Labels"][LABEL_DIGEST]:
        yield Progress(f"{config.service} is up to date")
        verb = "unchanged"
    else:
        yield Progress(f"updating service {config.service} ({config.image}, stop-first)")
        await asyncio.to_thread(swarm.update_service, desired)
        verb = "updated"
    fields = {
        "service": config.service,
        "image": config.image,
        "ports": ports_text(config.http_port, config.https_port),
        "server": name,
    }
    why = await _wait_running(swarm, desired, plane.clock)
    details = []
    if why is None and verb != "unchanged" and not here:
        address = await asyncio.to_thread(where.public_address, plane, name)
        details = [f"it runs on server {name}: its routes answer at {address}"]
    elif why is None and verb != "unchanged":
        ready = await _wait_ready(plane, started)
        if ready is None:
            why = _not_ready(config.service)
        else:
            details = [f"serves its routes (checked {ready:.1f} s after it was {verb})"]
    if why is None:
        yield Outcome(True, f"proxy {config.service} runs ({verb})", details, fields)
    else:
        yield Outcome(False, f"proxy {config.service} did not start", [f"why: {why}"], fields)


def _desired(plane: Plane, swarm: SwarmClient, joining: str | None = None) -> dict[str, Any]:
    """The proxy's spec, on the networks of what it routes now (and ``joining``): of this
    control plane's services only, so that another's deploys on a shared swarm never
    restart this proxy (blocking)."""
    owns = owner(plane)
    networks = routed_networks(s for s in swarm.services() if owns(s))
    ids = _object_ids(swarm, plane.edge)
    return proxy_spec(plane.edge, ids, [*networks, *filter(None, [joining])])


async def sync_networks(
    plane: Plane, swarm: SwarmClient, joining: str | None = None, here: bool = False
) -> AsyncIterator[Event]:
    """Bring a running proxy onto the routed networks and ``joining`` (core/edge/networks.py);
    nothing when it is on them already, or when there is no proxy yet. ``here``: ``swarm``
    is the control plane's own server, whose edge ``edge.address`` reaches: after a restart
    it is said to run again only once it serves its routes (core/edge/ready.py)."""
    config = plane.edge
    current = await asyncio.to_thread(swarm.inspect_service, config.service)
    if current is None:
        return
    _owned(current, config.service)
    desired = await asyncio.to_thread(_desired, plane, swarm, joining)
    if current["Spec"]["Labels"].get(LABEL_DIGEST) == desired["Labels"][LABEL_DIGEST]:
        return
    what = f"joins network {joining}" if joining else "leaves the networks nothing routed uses"
    yield Progress(f"the edge {config.service} {what} (Traefik restarts, stop-first)")
    started = plane.clock.monotonic()
    await asyncio.to_thread(swarm.update_service, desired)
    why = await _wait_running(swarm, desired, plane.clock)
    if why is not None:
        raise EdgeError(f"the edge {config.service} did not come back: {why}")
    if not here:
        yield Progress(f"the edge {config.service} runs again")
        return
    ready = await _wait_ready(plane, started)
    if ready is None:
        raise EdgeError(
            f"the edge {config.service} did not come back: {_not_ready(config.service)}"
        )
    yield Progress(
        f"the edge {config.service} runs again and serves its routes "
        f"(checked {ready:.1f} s after the update)"
    )


async def _wait_ready(plane: Plane, started: float) -> float | None:
    """Seconds from ``started`` until the proxy served its own router (core/edge/ready.py),
    on the plane's clock; None when it did not within READY_SECONDS."""
    config = plane.edge
    probe = plane.edge_ready or edge_ready
    deadline = plane.clock.monotonic() + READY_SECONDS
    while True:
        if await asyncio.to_thread(probe, config.address, config.http_port):
            return plane.clock.monotonic() - started
        if plane.clock.monotonic() >= deadline:
            return None
        await plane.clock.sleep(READY_POLL_SECONDS)


def _not_ready(service: str) -> str:
    return (
        f"it runs but served no route within {READY_SECONDS:.0f} s (its router on the HTTP "
        f"port did not answer): see `docker service logs {service}` and edge.address / "
        "edge.http_port in shipbot.yml"
    )


async def _wait_running(swarm: SwarmClient, desired: dict[str, Any], clock: Clock) -> str | None:
    """None once one task of ``desired`` runs healthy and no other runs; else why not
    (after ``START_SECONDS`` of ``clock``)."""
    image = desired["TaskTemplate"]["ContainerSpec"]["Image"]
    args = desired["TaskTemplate"]["ContainerSpec"]["Args"]
    deadline = clock.monotonic() + START_SECONDS
    last = "no task was scheduled"
    while clock.monotonic() < deadline:
        tasks = await asyncio.to_thread(swarm.tasks, desired["Name"])
        running = running_tasks(tasks)
        fresh = [
            t
            for t in running
            if t["Spec"]["ContainerSpec"]["Image"].split("@")[0] == image
            and t["Spec"]["ContainerSpec"].get("Args") == args
        ]
        if fresh and len(fresh) == len(running):
            return None
        if tasks:
            last = f"task {task_trouble(tasks)}"
        await clock.sleep(POLL_SECONDS)
    return f"{last} (after {START_SECONDS:.0f} s)"


def task_trouble(tasks: list[dict[str, Any]]) -> str:
    """Why no task runs, in the words of the task that says it: the newest one Swarm
    rejected or that failed (its error: "No such image: …"), not the retry that replaced
    it ("preparing"); the newest task's state when none has an error yet."""
    newest_first = sorted(tasks, key=lambda t: t.get("UpdatedAt", ""), reverse=True)
    erred = [t for t in newest_first if t["Status"].get("Err")]
    status = (erred or newest_first)[0]["Status"]
    return f"{status['State']}: {status.get('Err') or status.get('Message', '')}"


def ports_text(http_port: int, https_port: int) -> str:
    return f"http {http_port}, https {https_port} (host mode)"


def _published(spec: dict[str, Any]) -> str:
    ports = (spec.get("EndpointSpec") or {}).get("Ports") or []
    by_target = {p["TargetPort"]: p.get("PublishedPort") for p in ports}
    if not by_target:
        return "none published"
    return ports_text(by_target.get(80, 0), by_target.get(443, 0))


def _read_status(swarm: SwarmClient, config: EdgeConfig) -> ProxyStatus | None:
    service = swarm.inspect_service(config.service)
    if service is None:
        return None
    _owned(service, config.service)
    spec = service["Spec"]
    tasks = swarm.tasks(config.service)
    running = running_tasks(tasks)
    version = "?"
    for task in running:
        container = swarm.inspect_container(task["Status"]["ContainerStatus"]["ContainerID"])
        labels = ((container or {}).get("Config") or {}).get("Labels") or {}
        version = labels.get(VERSION_LABEL, version)
    state = ""
    if not running and tasks:
        state = task_trouble(tasks)
    return ProxyStatus(
        service=config.service,
        image=spec["TaskTemplate"]["ContainerSpec"]["Image"].split("@")[0],
        ports=_published(spec),
        running=len(running),
        desired=spec.get("Mode", {}).get("Replicated", {}).get("Replicas", 0),
        version=version,
        state=state,
    )


async def proxy_status(plane: Plane, server: str | None = None) -> ProxyStatus | None:
    """How ``server``'s proxy runs (the control plane's own by default), read from its
    swarm; None when there is none."""
    name, swarm = await where.reach(plane, server, "the proxy")
    found = await asyncio.to_thread(_read_status, swarm, plane.edge)
    return None if found is None else dataclasses.replace(found, server=name)


def routes_of(labels: dict[str, str], app: str, env: str) -> tuple[list[str], list[str], bool]:
    """Domains, path prefixes and https of a service, read back from its routers' labels
    (``<svc>``, and ``<svc>-wildcard`` beside exact names)."""
    router = f"traefik.http.routers.{router_name(app, env)}"
    rules = [labels.get(f"{router}{part}.rule", "") for part in ("", "-wildcard")]
    https = labels.get(f"{router}.entrypoints") == ENTRY_HTTPS
    return [d for r in rules for d in hosts_in(r)], PREFIX_RE.findall(rules[0]), https


def probe(
    address: str, port: int, domain: str, path: str, https: bool, timeout: float
) -> tuple[str, str]:
    """One GET through the proxy with the domain as Host (and as SNI over TLS): its status.

    The certificate is read, not trusted (``certs`` judges it): this asks whether the route
    reaches the app, and what it was served with. Returns (answer, certificate note).
    """
    conn = http.client.HTTPConnection(address, port, timeout=timeout)
    note = ""
    try:
        if https:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            raw = socket.create_connection((address, port), timeout=timeout)
            conn.sock = context.wrap_socket(raw, server_hostname=domain)
            der = conn.sock.getpeercert(binary_form=True)
            note = certificate_note(der, domain, dt.datetime.now(dt.UTC))
        conn.request("GET", path, headers={"Host": domain})
        response = conn.getresponse()
        return f"{response.status} {response.reason}", note
    except (OSError, http.client.HTTPException) as exc:
        return f"no answer ({exc or type(exc).__name__})", note
    finally:
        conn.close()


async def routes(plane: Plane, name: str, timeout: float = 5.0) -> list[Route]:
    """Each domain an app's services answer on, with one probe's answer through the edge."""
    swarm = await plane.servers.client(plane.server)
    config = plane.edge
    out = []
    for service in await asyncio.to_thread(swarm.services, name):
        labels = service["Spec"].get("Labels") or {}
        env = labels.get("shipbot.env", "")
        if service["Spec"]["Name"] != service_name(name, env):
            continue
        domains, prefixes, https = routes_of(labels, name, env)
        port = config.https_port if https else config.http_port
        scheme, default = ("https", 443) if https else ("http", 80)
        shown = "" if port == default else f":{port}"
        path = prefixes[0] if prefixes else "/"
        for domain in domains:
            answer, note = await asyncio.to_thread(
                probe, config.address, port, probe_name(domain), path, https, timeout
            )
            out.append(Route(env, f"{scheme}://{domain}{shown}{path}", answer, note))
    return sorted(out, key=lambda r: (r.env, r.url))
