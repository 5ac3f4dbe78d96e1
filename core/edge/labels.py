"""Pure builder: an app's routing in app.yml becomes the Traefik labels of its service.

Traefik's swarm provider reads service labels (core/edge/proxy.py runs it with
``exposedByDefault=false`` and a constraint on ``shipbot.managed``), so an app without
``domains`` gets none of these and stays reachable only inside the swarm network.

Per app and environment, named after its service (``api-production``):
- router ``<svc>`` for the exact names (and path prefixes): on ``websecure`` with TLS from
  the ACME resolver, or on ``web`` when ``https: false``; the wildcards on a router of
  their own (``<svc>-wildcard`` beside exact names) with the lowest priority;
- router ``<svc>-http`` (``<svc>-wildcard-http``) on ``web`` that redirects to HTTPS (when
  ``https``);
- middleware ``<svc>-retry``: a request that meets a task going away (refused, reset) is
  sent again to another task, so a rollout drops none;
- service ``<svc>`` to ``port`` on each task's own address (``lbswarm=false``: no IPVS),
  over the app environment's own network (``traefik.swarm.network``).
"""

from __future__ import annotations

from core.appspec import AppSpec
from core.edge.networks import NETWORK_LABEL
from core.host_rules import EXCLUDED, host_rule
from core.names import network_name

ENTRY_HTTP = "web"
ENTRY_HTTPS = "websecure"
RESOLVER = "shipbot"  # the ACME resolver core/edge/proxy.py configures
RETRY_ATTEMPTS = 4
RETRY_INTERVAL = "50ms"
RESOLVER_DNS = f"{RESOLVER}-dns"  # DNS-01 through Cloudflare: the only way to a wildcard
# Traefik's default priority is the rule's length, which a long HostRegexp can beat: every
# router says its own, and an exact name stands above any wildcard
EXACT_PRIORITY = 10000
WILDCARD_PRIORITY = 1


def router_name(app: str, env: str) -> str:
    return f"{app}-{env}"


def _any(parts: list[str]) -> str:
    joined = " || ".join(parts)
    return f"({joined})" if len(parts) > 1 else joined


def rule(domains: list[str], path_prefix: list[str], excluded: tuple[str, ...] = ()) -> str:
    """The router's rule; ``excluded``: names a wildcard must never match (last, negated:
    ``hosts_in`` reads only what stands before it)."""
    out = _any([host_rule(domain) for domain in domains])
    if path_prefix:
        out += " && " + _any([f"PathPrefix(`{prefix}`)" for prefix in path_prefix])
    if excluded:
        out += f"{EXCLUDED}{_any([host_rule(name) for name in excluded])}"
    return out


def routers(spec: AppSpec, env: str) -> list[tuple[str, list[str], int]]:
    """Each router's name, domains and priority: the exact names on ``<svc>`` above every
    wildcard, the wildcards (``<svc>-wildcard`` beside exact names) at the bottom, so an
    app's own name always wins over another app's wildcard."""
    name = router_name(spec.name, env)
    exact = [d for d in spec.domains if not d.startswith("*.")]
    wildcards = [d for d in spec.domains if d.startswith("*.")]
    out = [(name, exact, EXACT_PRIORITY)] if exact else []
    if wildcards:
        out.append((f"{name}-wildcard" if exact else name, wildcards, WILDCARD_PRIORITY))
    return out


def traefik_labels(
    spec: AppSpec, env: str, https_port: int = 443, excluded: tuple[str, ...] = ()
) -> dict[str, str]:
    """The labels that route ``spec``'s domains to it; none without domains.

    ``https_port`` is where the redirect sends browsers (the proxy's published port).
    ``excluded``: other apps' names under this app's wildcards, which its wildcard router
    never matches: while such an app has no running task (Traefik then drops its router),
    its requests get a 404 from the edge instead of reaching this app.
    """
    if not spec.domains:
        return {}
    name = router_name(spec.name, env)
    retry = f"{name}-retry"
    out = {
        "traefik.enable": "true",
        "traefik.swarm.lbswarm": "false",
        # the app environment's own network, which the edge joins (core/edge/networks.py)
        NETWORK_LABEL: network_name(spec.name, env),
        f"traefik.http.services.{name}.loadbalancer.server.port": str(spec.port),
        f"traefik.http.middlewares.{retry}.retry.attempts": str(RETRY_ATTEMPTS),
        f"traefik.http.middlewares.{retry}.retry.initialinterval": RETRY_INTERVAL,
    }
    redirect = f"{name}-https"
    for router_id, domains, priority in routers(spec, env):
        router = f"traefik.http.routers.{router_id}"
        unless = excluded if priority == WILDCARD_PRIORITY else ()
        out |= {
            f"{router}.rule": rule(domains, spec.path_prefix, unless),
            f"{router}.service": name,
            f"{router}.middlewares": retry,
            f"{router}.priority": str(priority),
        }
        if not spec.https:
            out[f"{router}.entrypoints"] = ENTRY_HTTP
            continue
        wildcard = priority == WILDCARD_PRIORITY
        if wildcard:
            for i, domain in enumerate(domains):  # a HostRegexp names no domain to certify
                out[f"{router}.tls.domains[{i}].main"] = domain
        out |= {
            f"{router}.entrypoints": ENTRY_HTTPS,
            f"{router}.tls": "true",
            f"{router}.tls.certresolver": RESOLVER_DNS if wildcard else RESOLVER,
            f"{router}-http.rule": rule(domains, spec.path_prefix, unless),
            f"{router}-http.entrypoints": ENTRY_HTTP,
            f"{router}-http.service": name,
            f"{router}-http.middlewares": redirect,
            f"{router}-http.priority": str(priority),
        }
    if spec.https:
        out |= {
            f"traefik.http.middlewares.{redirect}.redirectscheme.scheme": "https",
            f"traefik.http.middlewares.{redirect}.redirectscheme.permanent": "true",
        }
        if https_port != 443:
            out[f"traefik.http.middlewares.{redirect}.redirectscheme.port"] = str(https_port)
    return out


def urls(spec: AppSpec, http_port: int = 80, https_port: int = 443) -> list[str]:
    """Where the app answers: one URL per domain (and path prefix)."""
    scheme, port, default = ("https", https_port, 443) if spec.https else ("http", http_port, 80)
    suffix = "" if port == default else f":{port}"
    paths = spec.path_prefix or ["/"]
    return [f"{scheme}://{domain}{suffix}{path}" for domain in spec.domains for path in paths]
