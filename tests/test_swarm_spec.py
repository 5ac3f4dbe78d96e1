"""The ServiceSpec builder, compared whole against the exact expected structure."""

from __future__ import annotations

import pytest

from core.appspec import parse_app_config
from core.deploy.spec import (
    image_ref,
    parallelism,
    service_name,
    service_spec,
    with_force_update,
    with_replicas,
)

S = 1_000_000_000
APP = """\
name: hello
build: .
port: 8080
domains: [hello.example.com]
https: false
replicas: 2
healthcheck: {cmd: ["wget", "-qO-", "http://127.0.0.1:8080/"], interval: 2s, timeout: 2s,
  retries: 3, start_period: 2s}
env: {GREETING: hi, A_FIRST: "1"}
environments:
  production: {replicas: 3}
"""


def test_service_spec_exact():
    spec = parse_app_config(APP).for_env("production")
    labels = {
        "shipbot.app": "hello",
        "shipbot.env": "production",
        "shipbot.release": "7",
        "shipbot.managed": "true",
    }
    routing = {
        "traefik.enable": "true",
        "traefik.swarm.lbswarm": "false",
        "traefik.swarm.network": "shipbot-hello-production",
        "traefik.http.services.hello-production.loadbalancer.server.port": "8080",
        "traefik.http.middlewares.hello-production-retry.retry.attempts": "4",
        "traefik.http.middlewares.hello-production-retry.retry.initialinterval": "50ms",
        "traefik.http.routers.hello-production.rule": "Host(`hello.example.com`)",
        "traefik.http.routers.hello-production.service": "hello-production",
        "traefik.http.routers.hello-production.middlewares": "hello-production-retry",
        "traefik.http.routers.hello-production.priority": "10000",
        "traefik.http.routers.hello-production.entrypoints": "web",
    }
    assert service_spec(spec, "production", 7, "shipbot/hello:7") == {
        "Name": "hello-production",
        "Labels": labels | routing,  # Traefik reads the service's labels, not the containers'
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": "shipbot/hello:7",
                "Labels": labels,
                "Env": ["A_FIRST=1", "GREETING=hi"],
                "StopGracePeriod": 10 * S,
                "Healthcheck": {
                    "Test": ["CMD", "wget", "-qO-", "http://127.0.0.1:8080/"],
                    "Interval": 2 * S,
                    "Timeout": 2 * S,
                    "Retries": 3,
                    "StartPeriod": 2 * S,
                },
            },
            "RestartPolicy": {"Condition": "any", "Delay": 1 * S, "MaxAttempts": 0},
            "Networks": [{"Target": "shipbot-hello-production"}],
            "ForceUpdate": 0,
        },
        "Mode": {"Replicated": {"Replicas": 3}},
        "UpdateConfig": {
            "Parallelism": 3,  # all replicas in one start-first batch
            "Delay": 0,
            "FailureAction": "rollback",
            "Monitor": 6 * S,
            "MaxFailureRatio": 0,
            "Order": "start-first",
        },
        "RollbackConfig": {
            "Parallelism": 0,
            "Delay": 0,
            "FailureAction": "pause",
            "Monitor": 6 * S,
            "MaxFailureRatio": 0,
            "Order": "start-first",
        },
        "EndpointSpec": {"Mode": "dnsrr"},
    }


def test_rollout_override_sets_both_update_and_rollback():
    spec = parse_app_config(
        "name: a\nimage: a:1\nreplicas: 6\nrollout: {parallelism: 1, order: stop-first}\n"
    ).base
    out = service_spec(spec, "production", 1, "x")
    assert out["UpdateConfig"] == {
        "Parallelism": 1,
        "Delay": 0,
        "FailureAction": "rollback",
        "Monitor": 5 * S,
        "MaxFailureRatio": 0,
        "Order": "stop-first",
    }
    assert out["RollbackConfig"] == {
        "Parallelism": 0,
        "Delay": 0,
        "FailureAction": "pause",
        "Monitor": 5 * S,
        "MaxFailureRatio": 0,
        "Order": "stop-first",
    }


@pytest.mark.parametrize("replicas", [1, 2, 6, 100])
def test_default_parallelism_replaces_every_replica_in_one_batch(replicas):
    spec = parse_app_config(f"name: a\nimage: a:1\nreplicas: {replicas}\n").base
    assert parallelism(spec) == replicas


def test_rollout_parallelism_wins_over_the_default():
    spec = parse_app_config("name: a\nimage: a:1\nreplicas: 6\nrollout: {parallelism: 2}\n")
    assert parallelism(spec.base) == 2


def test_resources_volumes_command():
    spec = parse_app_config(
        "name: db\nimage: postgres:16\ncommand: [postgres, -c, fsync=off]\n"
        "resources: {cpus: 0.5, memory: 1G}\n"
        "volumes: ['data:/var/lib/pg', 'conf:/etc/pg:ro', '/srv/x:/x']\n"
    ).base
    out = service_spec(spec, "staging", 1, "shipbot/db:1")
    template = out["TaskTemplate"]
    assert template["Resources"] == {"Limits": {"NanoCPUs": 500_000_000, "MemoryBytes": 1024**3}}
    assert template["ContainerSpec"]["Mounts"] == [
        {"Type": "volume", "Source": "db-staging-data", "Target": "/var/lib/pg", "ReadOnly": False},
        {"Type": "volume", "Source": "db-staging-conf", "Target": "/etc/pg", "ReadOnly": True},
        {"Type": "bind", "Source": "/srv/x", "Target": "/x", "ReadOnly": False},
    ]
    assert template["ContainerSpec"]["Args"] == ["postgres", "-c", "fsync=off"]


def test_without_healthcheck_docker_default_monitor():
    out = service_spec(parse_app_config("name: a\nimage: a:1\n").base, "production", 1, "x")
    assert "Healthcheck" not in out["TaskTemplate"]["ContainerSpec"]
    assert "Resources" not in out["TaskTemplate"]
    assert out["UpdateConfig"]["Monitor"] == 5 * S


def test_small_monitor_has_a_floor():
    spec = parse_app_config(
        "name: a\nimage: a:1\nhealthcheck: {cmd: [x], interval: 500ms, retries: 1}\n"
    ).base
    assert service_spec(spec, "production", 1, "x")["UpdateConfig"]["Monitor"] == 2 * S


def test_with_helpers_do_not_mutate():
    base = service_spec(parse_app_config("name: a\nimage: a:1\n").base, "production", 1, "x")
    scaled = with_replicas(base, 4)
    forced = with_force_update(base, 3)
    assert scaled["Mode"] == {"Replicated": {"Replicas": 4}}
    assert forced["TaskTemplate"]["ForceUpdate"] == 3
    assert base["Mode"] == {"Replicated": {"Replicas": 1}}
    assert base["TaskTemplate"]["ForceUpdate"] == 0


def test_names():
    assert service_name("api", "staging") == "api-staging"
    assert image_ref("api", 12) == "shipbot/api:12"
