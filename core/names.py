"""The shapes of names every layer checks: apps, environments, keys, users, refs, roles.

One definition each, so the grammar, app.yml, shipbot.yml and git sources cannot drift.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

APP_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,40}$")
ENV_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,20}$")
DEFAULT_ENV = "production"  # the environment a command means when it names none
# Environment variable and secret names.
KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# ``platform:id`` with the platform's immutable id, never a display name.
USER_RE = re.compile(r"^[a-z]+:[A-Za-z0-9._@-]{1,80}$")
# A git ref or image tag, passed to git as one argv item; never option-like.
REF_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")
ROLE_NAMES = ("viewer", "deployer", "admin")
# A pattern of app or environment names in a grant: the name's letters, '*' and '?'.
NAME_PATTERN_RE = re.compile(r"^[a-z0-9*?][a-z0-9*?-]{0,40}$")
# A managed database: short enough that db-NAME-data and a MySQL user name (at most 32)
# always fit.
DB_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
# An SSH login key kept for servers: shaped as an app name.
SSH_KEY_NAME_RE = APP_NAME_RE
# A login on a server (POSIX user name, as useradd accepts).
LOGIN_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


def is_ref(value: str) -> bool:
    return bool(REF_RE.match(value)) and ".." not in value


# What shipbot writes on the services and networks it owns, so it finds them again.
NETWORK = "shipbot"
LABEL_APP = "shipbot.app"
LABEL_ENV = "shipbot.env"
LABEL_RELEASE = "shipbot.release"
LABEL_MANAGED = "shipbot.managed"
LABEL_PLANE = "shipbot.plane"  # the id of the control plane that made it (core/ownership.py)
LABEL_HELPER = "shipbot.volume.helper"  # on volume helper services: the volume they mount
LABEL_DB = "shipbot.db"  # on a managed database's service, volume and network: its name
LABEL_EDGE = "shipbot.edge"  # on the proxy's service


# Hostnames and path prefixes end up inside Traefik rules between backticks, so these
# checks are also what keeps a rule from being written from app.yml.
# One DNS label: letters, digits and inner hyphens, at most 63 characters.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
HOSTNAME_RE = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
PATH_PREFIX_RE = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$")


def hostname(value: Any) -> str:
    """A host name, lowercased; no wildcard."""
    if not isinstance(value, str):
        raise ValueError(f"expected a hostname such as api.example.com, got {value!r}")
    name = value.strip().lower().removesuffix(".")
    if name.startswith("*."):
        raise ValueError(f"{value!r}: a wildcard is not a host name")
    if len(name) > 253 or not HOSTNAME_RE.match(name):
        raise ValueError(f"{value!r} is not a hostname such as api.example.com")
    return name


def domain(value: Any) -> str:
    """A domain an app answers on: a host name, or ``*.`` and one (every name one level
    under it; its certificate needs DNS-01)."""
    if isinstance(value, str) and value.strip().startswith("*."):
        rest = value.strip()[2:]
        if "*" in rest:
            raise ValueError(f"{value!r}: a wildcard is one leading '*.', such as *.example.com")
        return "*." + hostname(rest)
    return hostname(value)


def path_prefix(value: Any) -> str:
    if not isinstance(value, str) or not PATH_PREFIX_RE.match(value):
        raise ValueError(f"expected a URL path starting with '/', such as /api, got {value!r}")
    return value


def service_name(app: str, env: str) -> str:
    """The Swarm service of an app in one environment."""
    return f"{app}-{env}"


def network_name(app: str, env: str) -> str:
    """The overlay network of an app in one environment: its service, its jobs, and only
    what an admin let reach it (the edge when routed, attached databases, granted links)."""
    return f"{NETWORK}-{app}-{env}"


def network_labels(app: str, env: str, plane_id: str) -> dict[str, str]:
    """An app environment's network, made by control plane ``plane_id``."""
    return {LABEL_APP: app, LABEL_ENV: env, LABEL_MANAGED: "true", LABEL_PLANE: plane_id}


def public_addresses(values: list[str] | tuple[str, ...]) -> list[str]:
    """IPv4/IPv6 addresses in canonical form, in the order given; a ``ValueError`` naming
    the first that is not one, or one given twice."""
    out = []
    for item in values:
        try:
            out.append(str(ipaddress.ip_address(item.strip())))
        except ValueError as exc:
            raise ValueError(f"{item!r} is not an IPv4 or IPv6 address") from exc
    if len(set(out)) != len(out):
        raise ValueError("an address is listed twice")
    return out
