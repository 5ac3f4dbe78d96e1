"""Pure builder: an ``AppSpec`` and a release become an Engine API ``ServiceSpec`` dict.

Nothing here talks to Docker; a swarm client (``core.swarm``) posts what this returns.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable
from typing import Any

from core.appspec import VOLUME_RE, AppSpec
from core.appspec.swarm import secret_references
from core.deploy.registry import INDEX_NAME, RegistryError, canonical
from core.durations import parse_duration_ns
from core.edge.labels import traefik_labels
from core.names import (
    LABEL_APP,
    LABEL_ENV,
    LABEL_MANAGED,
    LABEL_RELEASE,
    network_name,
    service_name,
)
from core.swarm import split_tag

# Docker's own default when there is no healthcheck to derive a monitor period from.
DEFAULT_MONITOR_NS = parse_duration_ns("5s")
MIN_MONITOR_NS = parse_duration_ns("2s")


RELEASES_REPO = "shipbot"


def image_ref(app: str, release: int) -> str:
    """The immutable tag of one release's image."""
    return f"{RELEASES_REPO}/{app}:{release}"


def release_of(image: str) -> str | None:
    """The app whose release image ``image`` names, under any spelling Docker resolves to
    shipbot's release repository (``docker.io/shipbot/APP``, ``index.docker.io/…``)."""
    try:
        repository = canonical(split_tag(image.split("@")[0])[0])
    except RegistryError:
        return None
    prefix = f"{INDEX_NAME}/{RELEASES_REPO}/"
    return repository.removeprefix(prefix) if repository.startswith(prefix) else None


def borrows_release_image(spec: AppSpec) -> bool:
    """``image:`` naming another app's release image (its code and whatever was built in)."""
    owner = release_of(spec.image) if spec.image else None
    return owner is not None and owner != spec.name


def monitor_ns(spec: AppSpec) -> int:
    """How long Swarm watches each new task before it calls the update a success.

    Long enough for a task that started healthy to miss every retry of its check.
    """
    check = spec.healthcheck
    if check is None:
        return DEFAULT_MONITOR_NS
    return max(MIN_MONITOR_NS, check.interval * check.retries)


def labels(spec: AppSpec, env: str, release: int) -> dict[str, str]:
    return {
        LABEL_APP: spec.name,
        LABEL_ENV: env,
        LABEL_RELEASE: str(release),
        LABEL_MANAGED: "true",
    }


def container_spec(spec: AppSpec, env: str, release: int, image: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Image": image,
        "Labels": labels(spec, env, release),
        "Env": [f"{key}={value}" for key, value in sorted(spec.env.items())],
        "StopGracePeriod": spec.stop_grace_period,
    }
    if spec.command is not None:
        out["Args"] = list(spec.command)
    if spec.healthcheck is not None:
        check = spec.healthcheck
        out["Healthcheck"] = {
            "Test": check.test(),
            "Interval": check.interval,
            "Timeout": check.timeout,
            "Retries": check.retries,
            "StartPeriod": check.start_period,
        }
    if spec.volumes:
        out["Mounts"] = [_mount(spec.name, env, volume) for volume in spec.volumes]
    return out


def _mount(app: str, env: str, volume: str) -> dict[str, Any]:
    match = VOLUME_RE.match(volume)
    assert match is not None  # appspec validated it
    bind = match["source"].startswith("/")
    return {
        "Type": "bind" if bind else "volume",
        "Source": match["source"] if bind else f"{app}-{env}-{match['source']}",
        "Target": match["target"],
        "ReadOnly": match["mode"] == "ro",
    }


def resources(spec: AppSpec) -> dict[str, Any]:
    limits: dict[str, int] = {}
    if spec.resources.cpus is not None:
        limits["NanoCPUs"] = int(spec.resources.cpus * 1_000_000_000)
    if spec.resources.memory is not None:
        limits["MemoryBytes"] = spec.resources.memory
    return {"Limits": limits} if limits else {}


def parallelism(spec: AppSpec) -> int:
    """Tasks replaced at once: app.yml's ``rollout.parallelism``, or all of them.

    Start-first and the health gate keep every old task serving until its replacement is
    healthy, so one batch costs no availability; it needs room for twice the tasks for a
    moment. Measured (benchmarks/deploy_scaling.py): 6 replicas took 1.33× one replica's
    time in one batch, 1.59× in two (half), 2.78× one at a time.
    """
    return spec.rollout.parallelism or spec.replicas


def service_spec(
    spec: AppSpec,
    env: str,
    release: int,
    image: str,
    *,
    force_update: int = 0,
    https_port: int = 443,
    secret_ids: dict[str, str] | None = None,
    excluded: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The whole ServiceSpec: start-first rolling update that rolls back on failure, with
    Traefik's routing labels when the app has domains (``https_port``: the proxy's;
    ``excluded``: other apps' names under its wildcards, core/edge/domains.py)."""
    monitor = monitor_ns(spec)
    task_template: dict[str, Any] = {
        "ContainerSpec": container_spec(spec, env, release, image),
        "RestartPolicy": {"Condition": "any", "Delay": parse_duration_ns("1s"), "MaxAttempts": 0},
        "Networks": [{"Target": name} for name in networks(spec, env)],
        "ForceUpdate": force_update,
    }
    limits = resources(spec)
    if limits:
        task_template["Resources"] = limits
    if spec.swarm_secrets:  # ``secret_ids``: from the engine (core/deploy/swarm_objects.py)
        task_template["ContainerSpec"]["Secrets"] = secret_references(
            spec.swarm_secrets, secret_ids or {}
        )
    where = placement(spec)
    if where:
        task_template["Placement"] = where
    return {
        "Name": service_name(spec.name, env),
        "Labels": labels(spec, env, release) | traefik_labels(spec, env, https_port, excluded),
        "TaskTemplate": task_template,
        "Mode": {"Replicated": {"Replicas": spec.replicas}},
        "UpdateConfig": {
            "Parallelism": parallelism(spec),
            "Delay": 0,
            "FailureAction": "rollback",
            "Monitor": monitor,
            "MaxFailureRatio": 0,
            "Order": spec.rollout.order,
        },
        "RollbackConfig": {
            "Parallelism": 0,
            "Delay": 0,
            "FailureAction": "pause",
            "Monitor": monitor,
            "MaxFailureRatio": 0,
            "Order": spec.rollout.order,
        },
        # No IPVS is assumed: Traefik and peers reach tasks directly (DNS round robin).
        "EndpointSpec": {"Mode": "dnsrr"},
    }


def networks(spec: AppSpec, env: str) -> list[str]:
    """The app environment's own network, then the network of each app it links to in
    the same environment (``links:``, which resolve() lets through only when granted)."""
    return [network_name(spec.name, env), *(network_name(other, env) for other in spec.links)]


def with_replicas(spec: dict[str, Any], replicas: int) -> dict[str, Any]:
    return {**spec, "Mode": {"Replicated": {"Replicas": replicas}}}


def with_force_update(spec: dict[str, Any], force_update: int) -> dict[str, Any]:
    return {**spec, "TaskTemplate": {**spec["TaskTemplate"], "ForceUpdate": force_update}}


def host_paths(spec: AppSpec) -> list[str]:
    """The host folders an app's volumes would bind-mount, normalised (``..`` folded)."""
    out = []
    for volume in spec.volumes:
        match = VOLUME_RE.match(volume)
        assert match is not None  # appspec validated it
        if match["source"].startswith("/"):
            out.append(posixpath.normpath(match["source"]))
    return out


def refused_host_paths(
    spec: AppSpec, allowed: tuple[str, ...], realpath: Callable[[str], str] = posixpath.normpath
) -> list[str]:
    """Bind mounts outside every prefix an admin allowed in shipbot.yml (none by default).

    ``realpath`` resolves links on hosts the control plane can see, so a link planted under
    an allowed folder cannot point a later mount elsewhere.
    """
    prefixes = [posixpath.normpath(p) for p in allowed]
    refused = []
    for path in host_paths(spec):
        real = realpath(path)
        if not any(p == "/" or real == p or real.startswith(p + "/") for p in prefixes):
            refused.append(path)
    return refused


def derived_names(spec: AppSpec, env: str) -> list[str]:
    """Every Swarm object name a deploy of ``spec`` to ``env`` makes: service and volumes."""
    volumes = [m["Source"] for m in (_mount(spec.name, env, v) for v in spec.volumes)]
    return [service_name(spec.name, env), *(v for v in volumes if not v.startswith("/"))]


def names_of_others(spec: AppSpec, env: str, apps: Iterable[str]) -> list[tuple[str, str]]:
    """Derived names that read as another app's: ``{app}-{env}`` is ambiguous where another
    app's name extends this one's (app ``api``, env ``v2-production`` would be app
    ``api-v2``'s production service). Returns (name, the other app)."""
    longer = [a for a in apps if a != spec.name and a.startswith(spec.name + "-")]
    return [(n, a) for n in derived_names(spec, env) for a in longer if n.startswith(a + "-")]


def placement(spec: AppSpec) -> dict[str, Any]:
    """app.yml's ``placement`` as Swarm's TaskTemplate.Placement (empty: Swarm decides)."""
    out: dict[str, Any] = {}
    if spec.placement.constraints:
        out["Constraints"] = [c.replace(" ", "") for c in spec.placement.constraints]
    if spec.placement.spread:
        out["Preferences"] = [{"Spread": {"SpreadDescriptor": spec.placement.spread}}]
    if spec.placement.max_per_node:
        out["MaxReplicas"] = spec.placement.max_per_node
    return out
