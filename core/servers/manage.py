"""The servers room's operations: keys, add (with bootstrap), check, trust, remove.

``add`` writes the server's row once SSH answered with a key trusted on first use and the
host is in its swarm, all in one insert: an unreachable host or a refused key leaves no
trace. The steps after it (network, proxy) are re-run by adding the server again.

The new server's proxy is set up by the step its caller hands in (``proxy``: the edge
room's setup, given by the ``server add`` command), so the servers room needs nothing of
the edge room's.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from fabric import Connection

from core.events import Event, Outcome, Progress
from core.names import APP_NAME_RE
from core.plane import Plane
from core.servers import bootstrap, keys, ssh
from core.servers.errors import NotReached, ServerError
from core.servers.hostkeys import HostKey, Pin
from core.servers.remote import MANAGER, WORKER, login_for
from core.servers.urls import ServerURL, parse_url
from core.swarm.servers import LOCAL

ROLES = (MANAGER, WORKER)

ProxySetup = Callable[[Plane, str], AsyncIterator[Event]]
"""Sets up (or updates) one server's proxy, reporting as it goes; its last event is the
``Outcome``."""


def check_name(name: str) -> str:
    if not APP_NAME_RE.match(name) or name == LOCAL:
        raise ServerError(
            f"{name!r} cannot name a server: a-z, 0-9 and '-', starting with a letter, "
            f"and not {LOCAL!r} (the engine shipbot runs beside)"
        )
    return name


# keys
def create_key(plane: Plane, name: str, user: str) -> str:
    """A new ed25519 key under ``name``; returns its public line."""
    return _store_key(plane, keys.check_key_name(name), keys.generate(), user)


def import_key(plane: Plane, name: str, private: str, user: str) -> str:
    return _store_key(plane, keys.check_key_name(name), private, user)


def _store_key(plane: Plane, name: str, private: str, user: str) -> str:
    public = keys.public_line(keys.load(private), f"shipbot-{name}")
    if not plane.store.add_ssh_key(
        name, plane.vault.encrypt(private), public, user, plane.clock.time()
    ):
        raise ServerError(f"a key named {name} exists: `ssh-key show {name}` prints it")
    return public


def public_key(plane: Plane, name: str) -> str:
    row = plane.store.ssh_key(name)
    if row is None:
        raise ServerError(f"no key named {name}: `ssh-key create {name}` makes one")
    return row["public"]


# add
@dataclass(frozen=True)
class Plan:
    name: str
    url: ServerURL
    key: str
    join: str | None
    role: str
    addresses: tuple[str, ...] = ()  # public IPv4/IPv6: where its apps' DNS records point


def plan_add(
    plane: Plane,
    name: str,
    url: str,
    key: str,
    join: str | None,
    role: str,
    addresses: tuple[str, ...] = (),
) -> Plan:
    """Everything ``add`` checks before it reaches for the network."""
    check_name(name)
    parsed = parse_url(url)
    if role not in ROLES:
        raise ServerError(f"--role is manager or worker, got {role!r}")
    if join is None and role != MANAGER:
        raise ServerError("a server that starts its own swarm is its manager: drop --role")
    if plane.store.ssh_key(key) is None:
        raise ServerError(
            f"no SSH key named {key}: `ssh-key create {key}` makes one (put its public line "
            f"in the host's authorized_keys), or `ssh-key import {key}` takes yours"
        )
    existing = plane.store.server(name)
    if existing is not None and existing["url"] != str(parsed):
        raise ServerError(
            f"server {name} is {existing['url']}; `server remove {name}` first to change it"
        )
    if join is not None:
        target = plane.store.server(join)
        if target is None or target["role"] != MANAGER:
            raise ServerError(f"--join names a manager added before: {join!r} is not one")
        if join == name:
            raise ServerError("a server cannot join itself")
    return Plan(name, parsed, key, join, role, addresses)


async def add(plane: Plane, plan: Plan, *, user: str, proxy: ProxySetup) -> AsyncIterator[Event]:
    existing = await plane.db.in_thread(lambda: plane.store.server(plan.name))
    swarm = (
        plan.name
        if plan.join is None
        else (await plane.db.in_thread(lambda: plane.store.server(plan.join)))["swarm"]
    )
    if existing is not None:
        yield Progress(f"{plan.name} was added before: running its bootstrap again")
        login = await asyncio.to_thread(login_for, plane, existing)
    else:
        pkey = keys.load(await asyncio.to_thread(_private, plane, plan.key))
        login = ssh.Login(plan.name, plan.url, pkey, None)
    manager = None
    if plan.join is not None:
        manager = await asyncio.to_thread(
            login_for, plane, await plane.db.in_thread(lambda: plane.store.server(plan.join))
        )
    queue: asyncio.Queue[Any] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    seen: dict[str, HostKey] = {}

    def steps() -> HostKey:
        for text in _bootstrap(login, manager, swarm, plan.role, seen):
            loop.call_soon_threadsafe(queue.put_nowait, Progress(text))
        return seen["presented"]

    task = loop.run_in_executor(None, steps)
    while not (task.done() and queue.empty()):
        getter = asyncio.ensure_future(queue.get())
        await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            yield getter.result()
        else:
            getter.cancel()
    host_key = await task
    if existing is None:
        row = {
            "name": plan.name,
            "url": str(plan.url),
            "key": plan.key,
            "host_key_kind": host_key.kind,
            "host_key": host_key.blob,
            "role": plan.role,
            "swarm": swarm,
            "added_by": user,
            "added_at": plane.clock.time(),
            "addresses": plan.addresses,
        }
        if not await plane.db.in_thread(lambda: plane.store.add_server(row)):
            raise ServerError(f"server {plan.name} was added meanwhile by someone else")
        trusted = f"host key {host_key.fingerprint} trusted on first use"
        yield Progress(f"recorded {plan.name}: {trusted}")
    elif plan.addresses:
        await plane.db.in_thread(
            lambda: plane.store.set_server_addresses(plan.name, list(plan.addresses))
        )
        yield Progress(
            f"public addresses for DNS now {', '.join(plan.addresses)}: the records of its "
            f"apps follow at their next deploy (`server address {plan.name} …` moves them now)"
        )
    if plan.addresses and existing is None:
        yield Progress(f"public addresses for DNS: {', '.join(plan.addresses)}")
    fields = {"server": plan.name, "address": str(plan.url), "swarm": swarm, "role": plan.role}
    if plan.join is None:
        swarm_client = await plane.servers.client(plan.name)
        await asyncio.to_thread(swarm_client.ensure_network)
        yield Progress("overlay network ready")
        # the new server's own proxy; edge.address is the control plane's, not probed here
        async for event in proxy(plane, plan.name):
            if isinstance(event, Outcome) and not event.ok:
                yield Outcome(False, f"{plan.name}: the proxy did not start", event.details, fields)
                return
            if not isinstance(event, Outcome):
                yield event
    yield Outcome(True, f"server {plan.name} is ready", [], fields)


def _private(plane: Plane, key: str) -> str:
    row = plane.store.ssh_key(key)
    if row is None:
        raise ServerError(f"no SSH key named {key}")
    return plane.vault.decrypt(row["private"])


def _bootstrap(
    login: ssh.Login,
    manager: ssh.Login | None,
    swarm: str,
    role: str,
    seen: dict[str, HostKey],
) -> Iterator[str]:
    """The Fabric part; ``seen["presented"]`` is the host key the host showed."""
    with _connect(login) as (conn, pin):
        assert pin.presented is not None
        seen["presented"] = pin.presented
        yield f"SSH to {login.url} answered, host key {pin.presented.fingerprint}"
        yield from bootstrap.ensure_docker(conn, login.url.user)
        if manager is None:
            yield from bootstrap.ensure_swarm(conn, None, role, login.name, swarm)
            return
        with _connect(manager) as (boss, _):
            yield from bootstrap.ensure_swarm(conn, boss, role, login.name, swarm)


@contextlib.contextmanager
def _connect(login: ssh.Login) -> Iterator[tuple[Connection, Pin]]:
    """``ssh.connect`` for the admin-only commands here, which show a server's address
    anyway: a failure to connect says it too (everyone else is told it without)."""
    with contextlib.ExitStack() as stack:
        try:
            opened = stack.enter_context(ssh.connect(login))
        except NotReached as exc:
            raise ServerError(exc.for_admin) from exc
        yield opened


# check, trust, remove
@dataclass(frozen=True)
class Report:
    server: dict[str, Any]
    fingerprint: str
    docker: str
    swarm: str
    nodes: list[tuple[str, ...]]


def check(plane: Plane, name: str) -> Report:
    """Reach the server strictly (pinned key) and read its engine and swarm."""
    row = _row(plane, name)
    login = login_for(plane, row)
    with _connect(login) as (conn, pin):
        assert pin.presented is not None
        version = ssh.run(conn, ["docker", "version", "--format", "{{.Server.Version}}"])
        docker = version.stdout.strip() if version.exited == 0 else "not answering"
        state = bootstrap.swarm_state(conn) if version.exited == 0 else None
        nodes: list[tuple[str, ...]] = []
        if state is not None and state.manager:
            listing = ssh.check(
                conn,
                [
                    "docker",
                    "node",
                    "ls",
                    "--format",
                    "{{.Hostname}}\t{{.Status}}\t{{.Availability}}\t{{.ManagerStatus}}",
                ],
                "listing the swarm's nodes",
            )
            nodes = [tuple(line.split("\t")) for line in listing.splitlines() if line]
    if state is None:
        swarm = "unknown (no engine)"
    elif state.state != "active":
        swarm = f"not in a swarm ({state.state})"
    else:
        swarm = f"{'manager' if state.manager else 'worker'}, node {state.node_id[:12]}"
    return Report(row, pin.presented.fingerprint, docker, swarm, nodes)


def trust(plane: Plane, name: str, fingerprint: str) -> HostKey:
    """Accept a server's new host key, only the one whose fingerprint the admin checked."""
    row = _row(plane, name)
    recorded = HostKey(row["host_key_kind"], row["host_key"])
    login = dataclasses.replace(login_for(plane, row), recorded=None)
    with _connect(login) as (_conn, pin):
        presented = pin.presented
    assert presented is not None
    if presented == recorded:
        raise ServerError(f"{name} presents the key shipbot has recorded ({recorded.fingerprint})")
    if presented.fingerprint != fingerprint:
        raise ServerError(
            f"{name} presents {presented.fingerprint}, not {fingerprint}: nothing was trusted; "
            "compare with `ssh-keygen -lf` on the host itself"
        )
    if not plane.store.trust_host_key(name, presented.kind, presented.blob, recorded.blob):
        raise ServerError(f"{name}'s host key was changed meanwhile: run `server check {name}`")
    plane.servers.forget(name)
    return presented


def remove(plane: Plane, name: str) -> None:
    row = _row(plane, name)
    members = [r["name"] for r in plane.store.servers(row["swarm"]) if r["name"] != name]
    if row["swarm"] == name and members:
        raise ServerError(
            f"{', '.join(members)} joined {name}'s swarm through it, and what runs there is "
            f"served by {name}'s proxy: `server remove {members[0]}` first; nothing was changed"
        )
    running = plane.store.envs_on(row["swarm"]) if row["role"] == MANAGER else []
    if running:
        shown = ", ".join(f"{app} ({env})" for app, env in running)
        raise ServerError(
            f"{shown} run on {name}: deploy them elsewhere (app.yml's server:) or remove "
            "them (`apps remove APP --env ENV`) first; nothing was changed"
        )
    held = [r["name"] for r in plane.store.databases() if r.get("server") == name]
    if held:
        raise ServerError(
            f"databases {', '.join(held)} live on {name}: back them up and remove them "
            f"(`backup run {held[0]}`, then `db remove {held[0]}`) first; nothing was changed"
        )
    plane.store.remove_server(name)
    plane.servers.forget(name)


def _row(plane: Plane, name: str) -> dict[str, Any]:
    row = plane.store.server(name)
    if row is None:
        raise ServerError(f"no server named {name!r}: `server list` shows them")
    return row
