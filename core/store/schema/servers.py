"""The ``servers`` room's migrations: servers added over SSH, their keys and which
environments they run.

A new step is one more function here, listed in ``STEPS`` with the next free number."""

from __future__ import annotations

from core.store.sql import Database


def v9_servers(db: Database) -> None:
    """Remote servers with the host key pinned on first use, and SSH login keys (encrypted)."""
    db["servers"].create(
        {
            "name": str,
            "url": str,
            "key": str,
            "host_key_kind": str,
            "host_key": str,
            "role": str,
            "swarm": str,
            "added_by": str,
            "added_at": float,
        },
        pk="name",
        not_null={"url", "key", "host_key_kind", "host_key", "role", "swarm"},
    )
    db["ssh_keys"].create(
        {"name": str, "private": str, "public": str, "created_by": str, "created_at": float},
        pk="name",
        not_null={"private", "public"},
    )
    # the server each app environment was last deployed to (rollback, scale, status follow)
    db["env_servers"].create(
        {"app": str, "env": str, "server": str, "since": float},
        pk=("app", "env"),
        not_null={"server"},
    )


def v24_server_addresses(db: Database) -> None:
    """Each server's public addresses (comma-separated, canonical), where app domains' DNS
    records point when an environment runs there; '' until an admin records them."""
    db["servers"].add_column("addresses", str, not_null_default="")


def v25_server_outages(db: Database) -> None:
    """Servers that did not answer, as the last process that dialled them found (wall
    times): the next process is told for a while instead of paying the time-out again."""
    db["server_outages"].create(
        {"server": str, "since": float, "error": str, "tried": float},
        pk="server",
        not_null={"since", "error", "tried"},
    )


STEPS = (v9_servers, v24_server_addresses, v25_server_outages)
