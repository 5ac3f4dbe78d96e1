"""Traefik's host rules, written and read back in one place.

``host_rule`` writes a domain as a router rule; ``hosts_in`` reads a rule back to the
domains it routes (``Host`` names and ``*.`` wildcards from the ``HostRegexp`` that
``host_rule`` wrote). The deploy's domain check, the certificate watcher and ``status``
all read rules through ``hosts_in``, so none of them misses a wildcard another sees.

A ground-floor leaf (it imports only ``re``): the edge room writes and reads rules with it,
and the store's migration v16 reads the rules earlier releases carry. ``hosts_in`` reads
every form a shipbot ever wrote, since old releases stay live and are rolled back to.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

WILDCARD_LABEL = "[a-z0-9-]+"
EXCLUDED = " && !"  # what follows names hosts a rule never matches (``labels.rule``)
# the name a wildcard is probed with: one label under it, as any client would ask
WILDCARD_PROBE = "shipbot-check"
_HOST = re.compile(r"Host\(\s*`([^`]+)`\s*\)")
_HOST_REGEXP = re.compile(r"HostRegexp\(\s*`([^`]+)`\s*\)")
_ROUTER_RULE = re.compile(r"^traefik\.http\.routers\.[^.]+\.rule$")


def host_rule(domain: str) -> str:
    """``Host`` for a name; for ``*.example.com``, a ``HostRegexp`` of one label under it."""
    if not domain.startswith("*."):
        return f"Host(`{domain}`)"
    return f"HostRegexp(`^{WILDCARD_LABEL}{re.escape('.' + domain[2:])}$`)"


def wildcard_of(regexp: str) -> str | None:
    """``*.example.com`` back from the ``HostRegexp`` pattern ``host_rule`` wrote."""
    if not regexp.startswith(f"^{WILDCARD_LABEL}") or not regexp.endswith("$"):
        return None
    return "*" + regexp[len(WILDCARD_LABEL) + 1 : -1].replace("\\", "")


def hosts_in(rule: str) -> list[str]:
    """The domains a router rule routes, lowercased: its names, then its wildcards (the
    names it excludes are not among them)."""
    rule = rule.partition(EXCLUDED)[0]
    wildcards = [w for w in map(wildcard_of, _HOST_REGEXP.findall(rule)) if w]
    return [d.lower() for d in [*_HOST.findall(rule), *wildcards]]


def routed_hosts(labels: Mapping[str, Any]) -> list[str]:
    """The domains every router rule among a service's ``labels`` routes, each once, in the
    order its rules name them."""
    rules = [v for k, v in labels.items() if _ROUTER_RULE.match(k) and isinstance(v, str)]
    return list(dict.fromkeys(d for rule in rules for d in hosts_in(rule)))


def probe_name(domain: str) -> str:
    """A name a request for ``domain`` can carry (a wildcard is asked for one name under it)."""
    return f"{WILDCARD_PROBE}.{domain[2:]}" if domain.startswith("*.") else domain
