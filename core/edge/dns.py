"""DNS records for app domains: shipbot.yml's ``dns:`` section, and the pure builders.

```yaml
dns:
  provider: cloudflare
  zone: example.com                  # every app domain must be in this zone
  addresses: [203.0.113.10]          # the control plane's own server's public A/AAAA
  # target: lb.example.net           # addresses, or instead a CNAME target
  servers: {eu-1: [198.51.100.7]}    # other servers' public addresses (or recorded from
                                     # chat: `server add … --address A`, `server address`)
  proxied: false                     # through Cloudflare's proxy (orange cloud)
  ttl: 1                             # seconds; 1 is Cloudflare's "automatic"
  token_env: CLOUDFLARE_API_TOKEN    # the variable holding the API token (Zone.DNS edit)
  api_url: null                      # another API base URL (a local fake, a proxy)
```

An app's records point at the server its environment runs on: the addresses recorded for
that server from chat, else its entry under ``servers``; the control plane's own server uses
``addresses`` or ``target``. A server with none is named, with what to do, and gets no
records.

The token never sits in shipbot.yml: it is read from the environment variable ``token_env``
names, when a sync runs, and masked in anything shipbot says.

Records shipbot makes carry the comment ``managed by shipbot: APP/ENV``: that is how
``dns list`` finds them, and what keeps one app from taking over another's name, or a
record someone made by hand.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

from core.config import AUTO_TTL, DnsConfig
from core.errors import CoreError

ADDRESS_TYPES = ("A", "AAAA", "CNAME")
OWNER_PREFIX = "managed by shipbot: "


class DnsError(CoreError):
    """DNS records cannot be read or written; the message says what to fix."""


@dataclass(frozen=True, order=True)
class Record:
    """A DNS record as shipbot wants it, or as Cloudflare holds it (``id`` set)."""

    name: str
    type: str
    content: str
    proxied: bool = False
    ttl: int = AUTO_TTL
    comment: str = ""
    id: str = ""

    def same(self, other: Record) -> bool:
        return (self.name, self.type, self.content, self.proxied, self.ttl, self.comment) == (
            other.name,
            other.type,
            other.content,
            other.proxied,
            other.ttl,
            other.comment,
        )

    @property
    def shown(self) -> str:
        cloud = " (proxied)" if self.proxied else ""
        return f"{self.type} {self.name} → {self.content}{cloud}"


@dataclass(frozen=True)
class Action:
    """What a sync does to one record: ``create``, ``update`` (``old`` → ``record``),
    ``delete`` (``old``), or ``keep`` (nothing)."""

    kind: Literal["create", "update", "delete", "keep"]
    record: Record | None = None
    old: Record | None = None

    @property
    def shown(self) -> str:
        if self.kind == "create":
            assert self.record is not None
            return f"created {self.record.shown}"
        if self.kind == "update":
            assert self.record is not None and self.old is not None
            return f"updated {self.record.shown} (was {self.old.content})"
        assert self.old is not None
        return f"{'deleted' if self.kind == 'delete' else 'unchanged'} {self.old.shown}"


def owner_comment(app: str, env: str) -> str:
    return f"{OWNER_PREFIX}{app}/{env}"


def owner_of(comment: str | None) -> tuple[str, str] | None:
    """The app and environment a record's comment says made it, if shipbot did."""
    if not comment or not comment.startswith(OWNER_PREFIX):
        return None
    app, slash, env = comment.removeprefix(OWNER_PREFIX).partition("/")
    return (app, env) if slash and app and env else None


def in_zone(name: str, zone: str) -> bool:
    return name == zone or name.endswith("." + zone)


Target = tuple[str, str]  # (record type, content): ("A", "203.0.113.10")


def targets(config: DnsConfig, server: str, own: str | None, recorded: list[str]) -> list[Target]:
    """What records of an environment on ``server`` point at: the addresses ``recorded``
    from chat, else ``servers``' entry, else (the control plane's ``own`` server only)
    ``addresses`` or ``target``. A ``DnsError`` saying what to do when there is none."""
    addresses = recorded or config.servers.get(server, [])
    if addresses:
        return [(_address_type(a), a) for a in addresses]
    if server == own and config.target is not None:
        return [("CNAME", config.target)]
    if server == own and config.addresses:
        return [(_address_type(a), a) for a in config.addresses]
    if server == own:
        raise DnsError(
            f"the control plane's own server {own} has no address for DNS records: set "
            "dns.addresses (A/AAAA) or dns.target (a CNAME) in shipbot.yml"
        )
    raise DnsError(
        f"server {server} has no public address recorded, so no DNS record can point at it: "
        f"an admin records it with `server address {server} A[,A…]` (its public IPv4/IPv6 "
        f"addresses) or lists it under dns.servers.{server} in shipbot.yml"
    )


def desired(
    app: str,
    env: str,
    domains: list[str],
    config: DnsConfig,
    to: list[Target] | None = None,
) -> list[Record]:
    """The records an app's domains need in one environment, sorted; ``to`` is what they
    point at (``targets``), the control plane's own server's by default."""
    outside = [d for d in domains if not in_zone(d, config.zone)]
    if outside:
        raise DnsError(
            f"{', '.join(outside)} {'is' if len(outside) == 1 else 'are'} not in zone "
            f"{config.zone}: shipbot manages records only there"
        )
    ttl = AUTO_TTL if config.proxied else config.ttl  # proxied records are always automatic
    comment = owner_comment(app, env)
    if to is None:
        to = [("CNAME", config.target)] if config.target is not None else []
        to += [(_address_type(a), a) for a in config.addresses]
    return sorted(
        Record(domain, kind, content, config.proxied, ttl, comment)
        for domain in domains
        for kind, content in to
    )


def _address_type(address: str) -> str:
    return "A" if ipaddress.ip_address(address).version == 4 else "AAAA"


def normal_content(kind: str, content: str) -> str:
    """Content as shipbot compares it: addresses in canonical form, hostnames lowercased."""
    if kind in ("A", "AAAA"):
        try:
            return str(ipaddress.ip_address(content))
        except ValueError:
            return content
    return content.lower().removesuffix(".")


def diff(want: list[Record], existing: list[Record], app: str, env: str) -> list[Action]:
    """Actions that make ``existing`` (the records at the wanted names and those this
    app/env made) hold ``want``: deletes first (a CNAME cannot sit beside an A), then
    updates, then creates; ``keep`` for what is already right.

    A name holding an A/AAAA/CNAME record that another app, or a person, made is refused
    whole, before anything is written.
    """
    comment = owner_comment(app, env)
    names = {r.name for r in want}
    mine = [r for r in existing if r.comment == comment]
    conflicts = [
        r for r in existing if r.name in names and r.type in ADDRESS_TYPES and r.comment != comment
    ]
    if conflicts:
        raise DnsError("; ".join(_conflict(r) for r in sorted(conflicts)))
    actions: list[Action] = []
    for name in sorted(names | {r.name for r in mine}):
        have = sorted(r for r in mine if r.name == name)
        pending = []
        for record in (r for r in want if r.name == name):
            match = next((r for r in have if _same_value(r, record)), None)
            if match is None:
                pending.append(record)
                continue
            have.remove(match)
            kind = "keep" if match.same(_with_content(record, match.content)) else "update"
            actions.append(Action(kind, record, match))
        for record in pending:
            match = next((r for r in have if r.type == record.type), None)
            if match is None:
                actions.append(Action("create", record))
            else:
                have.remove(match)
                actions.append(Action("update", record, match))
        actions.extend(Action("delete", old=r) for r in have)
    order = {"delete": 0, "update": 1, "create": 2, "keep": 3}
    return sorted(actions, key=lambda a: order[a.kind])


def _same_value(old: Record, new: Record) -> bool:
    return old.type == new.type and normal_content(old.type, old.content) == normal_content(
        new.type, new.content
    )


def _with_content(record: Record, content: str) -> Record:
    return Record(record.name, record.type, content, record.proxied, record.ttl, record.comment)


def _conflict(record: Record) -> str:
    owner = owner_of(record.comment)
    what = f"{record.name} has a {record.type} record ({record.content})"
    if owner is None:
        return f"{what} that shipbot did not make: remove it in Cloudflare to let shipbot manage it"
    return f"{what} of app {owner[0]} ({owner[1]}): one name serves one app"


def writes(actions: list[Action]) -> list[Action]:
    return [a for a in actions if a.kind != "keep"]
