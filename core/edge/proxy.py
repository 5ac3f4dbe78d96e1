"""Pure builder: shipbot.yml's ``edge:`` becomes the ServiceSpec of the Traefik proxy.

One Traefik task on a manager (it reads Swarm through the manager's Docker socket), on
shipbot's overlay network, its entrypoints published in host mode (no IPVS is assumed, and
host-mode publishing works everywhere). Never on host networking: from the host's network
namespace the overlay addresses of tasks have no route.

It routes only services labelled ``shipbot.managed=true`` that ask for it
(``exposedByDefault=false``), polling Swarm every ``refresh_seconds``: Traefik's default
of 15 s keeps tasks that Swarm already stopped in the pool long enough to drop requests.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from core.config import EdgeConfig
from core.durations import parse_duration_ns
from core.edge.acme import acme_args, acme_env, acme_mounts
from core.edge.labels import ENTRY_HTTP, ENTRY_HTTPS
from core.names import LABEL_EDGE, LABEL_MANAGED, NETWORK

# the proxy's own router (core/edge/ready.py): a name no domain grant can hold (RFC 2606's
# .invalid), above every app's router (core/edge/labels.py gives them 10000 and 1)
READY_HOST = "ready.shipbot.invalid"
READY_PRIORITY = 100000
LABEL_DIGEST = "shipbot.edge.digest"
SOCKET = "/var/run/docker.sock"
HTTP_TARGET = 80  # inside the task; the published ports are configuration
HTTPS_TARGET = 443


def traefik_args(config: EdgeConfig) -> list[str]:
    return [
        f"--entrypoints.{ENTRY_HTTP}.address=:{HTTP_TARGET}",
        f"--entrypoints.{ENTRY_HTTPS}.address=:{HTTPS_TARGET}",
        "--ping=true",
        "--log.format=json",
        # no calls home: the proxy talks only to the swarm, the apps and the ACME CA
        "--global.checkNewVersion=false",
        "--global.sendAnonymousUsage=false",
        "--providers.swarm=true",
        f"--providers.swarm.endpoint=unix://{SOCKET}",
        "--providers.swarm.exposedByDefault=false",
        f"--providers.swarm.network={NETWORK}",
        f"--providers.swarm.refreshSeconds={config.refresh_seconds}",
        # Traefik holds a provider's next change back for 2 s by default: a task Swarm has
        # stopped would stay in the pool that long after the poll that saw it go
        "--providers.providersThrottleDuration=0s",
        # a task that is gone leaves an address that never answers: the default 30 s dial
        # would hang the request past any client's patience; 2 s, then the retry middleware
        # (core/edge/labels.py) sends it to another task
        "--serversTransport.forwardingTimeouts.dialTimeout=2s",
        f"--providers.swarm.constraints=Label(`{LABEL_MANAGED}`,`true`)",
        # a routed app with no running task keeps its router and answers 503, once Traefik's
        # swarm provider honours this (traefik/traefik#9907; 3.7 still drops the router).
        # Either way its name never reaches another app's wildcard: core/edge/labels.py
        "--providers.swarm.allowEmptyServices=true",
        *acme_args(config.acme),
    ]


def ready_labels(service: str) -> dict[str, str]:
    """The router that answers once the swarm provider has loaded: Traefik's own ping
    handler on the HTTP entrypoint for READY_HOST. Its name has an underscore, which no app
    or environment name has, so no app's router can take it."""
    router = f"traefik.http.routers.{service}_ready"
    return {
        LABEL_MANAGED: "true",
        "traefik.enable": "true",
        f"{router}.rule": f"Host(`{READY_HOST}`)",
        f"{router}.entrypoints": ENTRY_HTTP,
        f"{router}.priority": str(READY_PRIORITY),
        f"{router}.service": "ping@internal",
        # the swarm provider skips a service it cannot address; this one is never routed to
        f"traefik.http.services.{service}_ready.loadbalancer.server.port": str(HTTP_TARGET),
    }


def proxy_spec(
    config: EdgeConfig, ids: dict[str, str] | None = None, networks: Iterable[str] = ()
) -> dict[str, Any]:
    """The whole ServiceSpec, labelled with a digest of itself so that ``proxy setup``
    leaves an unchanged proxy alone (Swarm adds defaults to what it stores).

    ``ids``: the Swarm ids of the configs and secrets edge.acme names (the executor looks
    them up; Swarm wants both name and id). ``networks``: those of the routed app
    environments, joined besides shipbot's own (core/edge/networks.py)."""
    acme = acme_mounts(config.acme)
    ids = ids or {}
    container: dict[str, Any] = {
        "Image": config.image,
        "Args": traefik_args(config),
        "Labels": {LABEL_EDGE: "true"},
        "Env": [f"{key}={value}" for key, value in sorted(acme_env(config.acme).items())],
        "Mounts": [
            {"Type": "bind", "Source": SOCKET, "Target": SOCKET, "ReadOnly": True},
            *({**mount, "ReadOnly": False} for mount in acme["Mounts"]),
        ],
        # generous: a ping slowed by a busy machine must never make Swarm restart the one
        # proxy every domain goes through (a restart drops them all, then answers 404 until
        # its routers are loaded); only a minute of failed pings in a row (12 × 5 s) does
        "Healthcheck": {
            "Test": ["CMD", "traefik", "healthcheck", "--ping"],
            "Interval": parse_duration_ns("5s"),
            "Timeout": parse_duration_ns("4s"),
            "Retries": 12,
            "StartPeriod": parse_duration_ns("30s"),
        },
        "StopGracePeriod": parse_duration_ns("10s"),
    }
    for key, name_key, id_key in (
        ("Configs", "ConfigName", "ConfigID"),
        ("Secrets", "SecretName", "SecretID"),
    ):
        if acme[key]:
            container[key] = [
                {**item, id_key: ids.get(str(item[name_key]), "")} for item in acme[key]
            ]
    update = {
        "Parallelism": 1,
        "Delay": 0,
        # the published host ports are held by the old task until it stops
        "Order": "stop-first",
        "Monitor": parse_duration_ns("5s"),
        "MaxFailureRatio": 0,
    }
    spec: dict[str, Any] = {
        "Name": config.service,
        "Labels": {LABEL_EDGE: "true", **ready_labels(config.service)},
        "TaskTemplate": {
            "ContainerSpec": container,
            "Placement": {"Constraints": ["node.role==manager"]},
            "RestartPolicy": {
                "Condition": "any",
                "Delay": parse_duration_ns("1s"),
                "MaxAttempts": 0,
            },
            "Networks": [
                {"Target": name} for name in [NETWORK, *sorted(set(networks) - {NETWORK})]
            ],
            "ForceUpdate": 0,
        },
        "Mode": {"Replicated": {"Replicas": 1}},
        "UpdateConfig": {**update, "FailureAction": "rollback"},
        "RollbackConfig": {**update, "FailureAction": "pause"},
        "EndpointSpec": {
            "Mode": "dnsrr",
            "Ports": [
                _port(HTTP_TARGET, config.http_port),
                _port(HTTPS_TARGET, config.https_port),
            ],
        },
    }
    spec["Labels"][LABEL_DIGEST] = digest(spec)
    return spec


def _port(target: int, published: int) -> dict[str, Any]:
    return {
        "Protocol": "tcp",
        "TargetPort": target,
        "PublishedPort": published,
        "PublishMode": "host",
    }


def digest(spec: dict[str, Any]) -> str:
    """What the proxy's spec says, minus the digest label itself."""
    labels = {k: v for k, v in spec["Labels"].items() if k != LABEL_DIGEST}
    text = json.dumps({**spec, "Labels": labels}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
