"""Remote servers from chat: SSH keys, add (bootstrap over SSH), list, check, trust, their
public addresses (where DNS records point), remove.

Every command here is for admins of every app and environment (they name no app, so only
an `admin` grant on `*`/`*` covers them): a server runs every app deployed to it, and its
login key opens a root shell there.

SSH login keys never pass through a channel: `ssh-key create` makes one and shows only its
public line; `ssh-key import` reads a private key from the console's hidden prompt or the
chat's form (like `secret set`). Either is stored encrypted by the vault.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

from commands.catalog.context import Context, relay
from commands.grammar import arg, command, option
from commands.permissions import ADMIN
from commands.replies import Message, Reply, Result, Table
from core.servers import nodes
from core.servers.errors import ServerError
from core.servers.keys import DEFAULT_KEY
from core.servers.remote import MANAGER
from core.servers.urls import parse_url


@command(
    "ssh-key",
    permission=ADMIN,
    changes_state=True,
    examples=("ssh-key create default", "ssh-key import ops", "ssh-key show default"),
)
class SshKey:
    """SSH login keys for servers: `create` makes one, `import` takes yours, `show` prints
    its public line for the host's ~/.ssh/authorized_keys; `list` names them.

    An imported private key is typed into the console's hidden prompt or the chat's form,
    never into the channel, and is kept encrypted.
    """

    action: str = arg("text", "create|import|show|list")
    key: str | None = arg("text", "NAME", optional=True)

    def __post_init__(self) -> None:
        if self.action not in ("create", "import", "show", "list"):
            raise ValueError(f"expected create, import, show or list, got {self.action!r}")
        if self.action != "list" and self.key is None:
            raise ValueError(f"ssh-key {self.action} needs the key's NAME")

    @property
    def changes(self) -> bool:
        return self.action in ("create", "import")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        from core.servers import manage  # Fabric and paramiko load with it

        plane, user = ctx.engine.plane, ctx.user
        if self.action == "list":
            rows = await ctx.engine.db.in_thread(lambda: ctx.engine.store.ssh_keys())
            if not rows:
                yield Message("no SSH keys: `ssh-key create default` makes one")
                return
            yield Table(
                ("key", "public", "by"),
                tuple((r["name"], r["public"][:40] + "…", r["created_by"]) for r in rows),
            )
            return
        assert self.key is not None
        if self.action == "show":
            public = await asyncio.to_thread(manage.public_key, plane, self.key)
            yield Message(public)
            return
        if self.action == "create":
            public = await asyncio.to_thread(manage.create_key, plane, self.key, user)
        else:
            if not ctx.secret:
                raise ServerError(
                    "ssh-key import reads the private key from a prompt or form, never the "
                    "channel: use the console or your chat's form"
                )
            public = await asyncio.to_thread(manage.import_key, plane, self.key, ctx.secret, user)
        yield Result(
            True,
            f"SSH key {self.key} stored, encrypted; put this line in the host's "
            "~/.ssh/authorized_keys",
            (public,),
        )


@command(
    "server add",
    permission=ADMIN,
    changes_state=True,
    examples=(
        "server add eu-1 ssh://root@203.0.113.7",
        "server add eu-2 ssh://root@203.0.113.8 --join eu-1",
        "server add eu-3 ssh://root@203.0.113.9 --join eu-1 --role manager --key ops",
        "server add eu-4 ssh://root@10.0.0.4 --address 203.0.113.10 --address 2001:db8::10",
    ),
)
class ServerAdd:
    """Add a server over SSH and bootstrap it with Fabric, step by step in the channel.

    Installs Docker if it is missing (apt), then starts a swarm (its overlay network and
    Traefik included) or, with --join, joins that server's swarm as a worker (or --role
    manager). Opens nothing else. The host key is trusted on first use and checked
    strictly afterwards. Safe to run again: each step checks before it acts. --address
    (repeatable) records its public IPv4/IPv6 addresses: the DNS records of the apps that
    run on it point there.
    """

    server: str = arg("app", "NAME")
    url: str = arg("text", "ssh://USER@HOST[:PORT]")
    key: str = option("text", "KEY", default=DEFAULT_KEY)
    join: str | None = option("app", "MANAGER")
    role: str | None = option("text", "worker|manager")
    address: tuple[str, ...] = option("addresses", "A", default=())

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        from core.servers import manage  # Fabric and paramiko load with it

        role = self.role or ("worker" if self.join else MANAGER)
        plane = ctx.engine.plane
        plan = await asyncio.to_thread(
            manage.plan_add, plane, self.server, self.url, self.key, self.join, role, self.address
        )
        async for reply in relay(manage.add(ctx.engine.plane, plan, user=ctx.user)):
            yield reply


@command("server list", permission=ADMIN, examples=("server list",))
class ServerList:
    """The servers added from chat: address, swarm, role and pinned host key."""

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        from core.servers.hostkeys import HostKey  # paramiko loads with it

        rows = await ctx.engine.db.in_thread(lambda: ctx.engine.store.servers())
        if not rows:
            own = "apps run on `local`" if ctx.engine.plane.servers.has_local else "none to run on"
            yield Message(f"no servers yet ({own}): `server add` adds one")
            return
        read = await nodes.read(ctx.engine.plane, sorted({r["swarm"] for r in rows}))
        swarms = {s.server: s for s in read}
        yield Table(
            ("server", "address", "public", "swarm", "role", "host key", "added", "node"),
            tuple(
                (
                    r["name"],
                    r["url"],
                    r["addresses"].replace(",", ", ") or "none",
                    r["swarm"],
                    r["role"],
                    HostKey(r["host_key_kind"], r["host_key"]).fingerprint,
                    f"{_when(r['added_at'])} by {r['added_by']}",
                    _node_state(swarms[r["swarm"]], r["url"]),
                )
                for r in rows
            ),
        )
        for line in nodes.down_lines(read):
            yield Message(line)


def _node_state(swarm: nodes.SwarmNodes, url: str) -> str:
    """What Swarm says of the node at ``url``: ready, down… or why it cannot be told."""
    if swarm.error is not None:
        return f"unknown ({swarm.server} cannot be read: `server check {swarm.server}`)"
    node = nodes.node_of(swarm.nodes, parse_url(url).host)
    return "not in the swarm" if node is None else nodes.state(node)


@command("server check", permission=ADMIN, examples=("server check eu-1",))
class ServerCheck:
    """Reach a server with its pinned host key and show its engine and swarm."""

    server: str = arg("app", "NAME")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        from core.servers import manage  # Fabric and paramiko load with it

        report = await asyncio.to_thread(manage.check, ctx.engine.plane, self.server)
        row = report.server
        yield Table(
            ("", self.server),
            (
                ("address", row["url"]),
                ("host key", f"{report.fingerprint} (matches the record)"),
                ("docker", report.docker),
                ("swarm", f"{row['swarm']}: {report.swarm}"),
            ),
        )
        if report.nodes:
            yield Table(("node", "status", "availability", "manager"), tuple(report.nodes))


@command(
    "server trust",
    permission=ADMIN,
    changes_state=True,
    examples=("server trust eu-1 SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8",),
)
class ServerTrust:
    """Accept a server's changed host key, given the fingerprint you checked on the host
    (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`)."""

    server: str = arg("app", "NAME")
    fingerprint: str = arg("text", "SHA256:FINGERPRINT")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        from core.servers import manage  # Fabric and paramiko load with it

        key = await asyncio.to_thread(manage.trust, ctx.engine.plane, self.server, self.fingerprint)
        yield Result(True, f"{self.server}'s new host key {key.fingerprint} is trusted")


@command(
    "server address",
    permission=ADMIN,
    changes_state=True,
    examples=("server address eu-1 203.0.113.7", "server address eu-1 203.0.113.7,2001:db8::7"),
)
class ServerAddress:
    """Record a server's public IPv4/IPv6 addresses (comma-separated; `none` clears them):
    the DNS records of the apps that run on it point there, and are moved at once.

    The control plane's own server's addresses are `dns.addresses` in shipbot.yml.
    """

    server: str = arg("app", "NAME")
    addresses: tuple[str, ...] = arg("addresses", "A[,A…]|none")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        plane, store = ctx.engine.plane, ctx.engine.store
        if await ctx.engine.db.in_thread(lambda: store.server(self.server)) is None:
            own = " (the control plane's own: dns.addresses in shipbot.yml)"
            raise ServerError(
                f"no server named {self.server!r}{own if self.server == plane.server else ''}: "
                "`server list` shows the ones added from chat; nothing was changed"
            )
        was = await ctx.engine.db.in_thread(lambda: store.server_addresses(self.server))
        addresses = list(self.addresses)
        await ctx.engine.db.in_thread(lambda: store.set_server_addresses(self.server, addresses))
        shown = ", ".join(addresses) or "none"
        details = [f"was {', '.join(was) or 'none'}", *await _moved(ctx, self.server, addresses)]
        yield Result(
            True,
            f"server {self.server}'s public addresses: {shown}",
            tuple(details),
            {"server": self.server, "addresses": shown},
        )


async def _moved(ctx: Context, server: str, addresses: list[str]) -> list[str]:
    """What became of the DNS records of the apps on ``server``: one line each."""
    from core.edge.dns import DnsError, writes
    from core.edge.dns_servers import repoint_server

    config = ctx.config.dns
    if config is None:
        return ["DNS is not configured (no `dns:` in shipbot.yml): no records to move"]
    if not addresses and not config.servers.get(server):
        return [
            f"the DNS records of the apps on {server} were left as they are: a server "
            "with no address gets none"
        ]
    try:
        moved = await repoint_server(ctx.engine.plane, config, server)
    except DnsError as exc:
        return [f"DNS not updated: {exc}; `server address {server} …` again to retry"]
    if not moved:
        return [f"no app runs on {server} yet: its records will point there at deploy"]
    lines = []
    for item in moved:
        where = f"{item.app} ({item.env})"
        if item.error:
            retry = f"`dns sync {item.app} --env {item.env}`"
            lines.append(f"DNS of {where} not updated: {item.error}; {retry}")
            continue
        changed = writes(list(item.actions))
        said = "; ".join(a.shown for a in changed) if changed else "records up to date"
        lines.append(f"DNS of {where}: {said if item.actions else 'no records yet'}")
    return lines


@command("server remove", permission=ADMIN, changes_state=True, examples=("server remove eu-2",))
class ServerRemove:
    """Forget a server: shipbot stops driving it; the host and its swarm keep running."""

    server: str = arg("app", "NAME")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        from core.servers import manage  # Fabric and paramiko load with it

        await asyncio.to_thread(manage.remove, ctx.engine.plane, self.server)
        yield Result(
            True,
            f"server {self.server} removed from shipbot; the host still runs Docker and its "
            "swarm (`docker swarm leave` there to leave it)",
        )


def _when(stamp: float) -> str:
    return dt.datetime.fromtimestamp(stamp, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
