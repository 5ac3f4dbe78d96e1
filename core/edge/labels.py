"""Pure builder: an app's routing in app.yml becomes the Traefik labels of its service.

Traefik's swarm provider reads service labels (core/edge/proxy.py runs it with
``exposedByDefault=false`` and a constraint on ``shipbot.managed``), so an app without
``domains`` gets none of these and stays reachable only inside the swarm network.

Per app and environment, named after its service (``api-production``):
- router ``<svc>`` for the domains (and path prefixes): on ``websecure`` with TLS from the
  ACME resolver, or on ``web`` when ``https: false``;
- router ``<svc>-http`` on ``web`` that redirects to HTTPS (when ``https``);
- middleware ``<svc>-retry``: a request that meets a task going away (refused, reset) is
  sent again to another task, so a rollout drops none;
- service ``<svc>`` to ``port`` on each task's own address (``lbswarm=false``: no IPVS),
  over the app environment's own network (``traefik.swarm.network``).
"""

from __future__ import annotations

import re

from core.appspec import AppSpec
from core.edge.networks import NETWORK_LABEL
from core.names import network_name

ENTRY_HTTP = "web"
ENTRY_HTTPS = "websecure"
RESOLVER = "shipbot"  # the ACME resolver core/edge/proxy.py configures
RETRY_ATTEMPTS = 4
RETRY_INTERVAL = "50ms"
RESOLVER_DNS = f"{RESOLVER}-dns"  # DNS-01 through Cloudflare: the only way to a wildcard
WILDCARD_LABEL = "[a-z0-9-]+"


def router_name(app: str, env: str) -> str:
    return f"{app}-{env}"


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


def rule(spec: AppSpec) -> str:
    hosts = " || ".join(host_rule(domain) for domain in spec.domains)
    if len(spec.domains) > 1:
        hosts = f"({hosts})"
    if not spec.path_prefix:
        return hosts
    prefixes = " || ".join(f"PathPrefix(`{prefix}`)" for prefix in spec.path_prefix)
    if len(spec.path_prefix) > 1:
        prefixes = f"({prefixes})"
    return f"{hosts} && {prefixes}"


def traefik_labels(spec: AppSpec, env: str, https_port: int = 443) -> dict[str, str]:
    """The labels that route ``spec``'s domains to it; none without domains.

    ``https_port`` is where the redirect sends browsers (the proxy's published port).
    """
    if not spec.domains:
        return {}
    name = router_name(spec.name, env)
    router = f"traefik.http.routers.{name}"
    retry = f"{name}-retry"
    out = {
        "traefik.enable": "true",
        "traefik.swarm.lbswarm": "false",
        # the app environment's own network, which the edge joins (core/edge/networks.py)
        NETWORK_LABEL: network_name(spec.name, env),
        f"traefik.http.services.{name}.loadbalancer.server.port": str(spec.port),
        f"traefik.http.middlewares.{retry}.retry.attempts": str(RETRY_ATTEMPTS),
        f"traefik.http.middlewares.{retry}.retry.initialinterval": RETRY_INTERVAL,
        f"{router}.rule": rule(spec),
        f"{router}.service": name,
        f"{router}.middlewares": retry,
    }
    wildcard = any(domain.startswith("*.") for domain in spec.domains)
    if wildcard:  # the weakest claim: any app's own name under it wins over it
        out[f"{router}.priority"] = "1"
    if not spec.https:
        out[f"{router}.entrypoints"] = ENTRY_HTTP
        return out
    redirect = f"{name}-https"
    if wildcard:
        out[f"{router}-http.priority"] = "1"
        for i, domain in enumerate(spec.domains):  # a HostRegexp names no domain to certify
            out[f"{router}.tls.domains[{i}].main"] = domain
    out |= {
        f"{router}.entrypoints": ENTRY_HTTPS,
        f"{router}.tls": "true",
        f"{router}.tls.certresolver": RESOLVER_DNS if wildcard else RESOLVER,
        f"{router}-http.rule": rule(spec),
        f"{router}-http.entrypoints": ENTRY_HTTP,
        f"{router}-http.service": name,
        f"{router}-http.middlewares": redirect,
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
