"""The proxy's ServiceSpec builder, exactly, and `proxy setup` / `proxy status` / a deploy's
URL through the real dispatcher on an in-memory swarm."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives import serialization

from commands.replies import DENIED
from core.config import AcmeConfig, EdgeConfig
from core.edge import operate
from core.edge.acme import acme_args
from core.edge.operate import certificate_note
from core.edge.proxy import proxy_spec
from tests.certgen import make_ca, make_leaf
from tests.chat import failure, result, say, table
from tests.clock import ManualClock
from tests.fast_plane import dispatcher, fake_swarm

S = 1_000_000_000


def test_proxy_spec_exact():
    config = EdgeConfig(image="traefik:v3.7", http_port=8000, https_port=8443)
    spec = proxy_spec(config)
    digest = spec["Labels"].pop("shipbot.edge.digest")
    assert len(digest) == 16
    assert spec == {
        "Name": "shipbot-edge",
        "Labels": {
            "shipbot.edge": "true",
            # its own router: it answers once the swarm provider has loaded (core/edge/ready.py)
            "shipbot.managed": "true",
            "traefik.enable": "true",
            "traefik.http.routers.shipbot-edge_ready.rule": "Host(`ready.shipbot.invalid`)",
            "traefik.http.routers.shipbot-edge_ready.entrypoints": "web",
            "traefik.http.routers.shipbot-edge_ready.priority": "100000",
            "traefik.http.routers.shipbot-edge_ready.service": "ping@internal",
            "traefik.http.services.shipbot-edge_ready.loadbalancer.server.port": "80",
        },
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": "traefik:v3.7",
                "Args": [
                    "--entrypoints.web.address=:80",
                    "--entrypoints.websecure.address=:443",
                    "--ping=true",
                    "--log.format=json",
                    "--global.checkNewVersion=false",
                    "--global.sendAnonymousUsage=false",
                    "--providers.swarm=true",
                    "--providers.swarm.endpoint=unix:///var/run/docker.sock",
                    "--providers.swarm.exposedByDefault=false",
                    "--providers.swarm.network=shipbot",
                    "--providers.swarm.refreshSeconds=1",
                    "--providers.providersThrottleDuration=0s",
                    "--serversTransport.forwardingTimeouts.dialTimeout=2s",
                    "--providers.swarm.constraints=Label(`shipbot.managed`,`true`)",
                    "--providers.swarm.allowEmptyServices=true",
                    *acme_args(config.acme),  # exactly tested in test_acme.py
                ],
                "Labels": {"shipbot.edge": "true"},
                "Env": [],
                "Mounts": [
                    {
                        "Type": "bind",
                        "Source": "/var/run/docker.sock",
                        "Target": "/var/run/docker.sock",
                        "ReadOnly": True,
                    },
                    {
                        "Type": "volume",
                        "Source": "shipbot-edge-acme",
                        "Target": "/data",
                        "ReadOnly": False,
                    },
                ],
                "Healthcheck": {
                    "Test": ["CMD", "traefik", "healthcheck", "--ping"],
                    "Interval": 5 * S,
                    "Timeout": 4 * S,
                    "Retries": 12,
                    "StartPeriod": 30 * S,
                },
                "StopGracePeriod": 10 * S,
            },
            "Placement": {"Constraints": ["node.role==manager"]},
            "RestartPolicy": {"Condition": "any", "Delay": 1 * S, "MaxAttempts": 0},
            "Networks": [{"Target": "shipbot"}],
            "ForceUpdate": 0,
        },
        "Mode": {"Replicated": {"Replicas": 1}},
        "UpdateConfig": {
            "Parallelism": 1,
            "Delay": 0,
            "Order": "stop-first",
            "Monitor": 5 * S,
            "MaxFailureRatio": 0,
            "FailureAction": "rollback",
        },
        "RollbackConfig": {
            "Parallelism": 1,
            "Delay": 0,
            "Order": "stop-first",
            "Monitor": 5 * S,
            "MaxFailureRatio": 0,
            "FailureAction": "pause",
        },
        "EndpointSpec": {
            "Mode": "dnsrr",
            "Ports": [
                {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8000, "PublishMode": "host"},
                {
                    "Protocol": "tcp",
                    "TargetPort": 443,
                    "PublishedPort": 8443,
                    "PublishMode": "host",
                },
            ],
        },
    }


def test_digest_follows_the_config():
    one = proxy_spec(EdgeConfig())["Labels"]["shipbot.edge.digest"]
    assert proxy_spec(EdgeConfig())["Labels"]["shipbot.edge.digest"] == one
    assert proxy_spec(EdgeConfig(refresh_seconds=2))["Labels"]["shipbot.edge.digest"] != one


def test_acme_configs_and_secrets_carry_their_ids():
    acme = AcmeConfig(ca_certificates="pebble-ca", dns_token_secret="cf-token")
    spec = proxy_spec(EdgeConfig(acme=acme), {"pebble-ca": "cfg1", "cf-token": "sec1"})
    container = spec["TaskTemplate"]["ContainerSpec"]
    assert [(c["ConfigName"], c["ConfigID"]) for c in container["Configs"]] == [
        ("pebble-ca", "cfg1")
    ]
    assert [(s["SecretName"], s["SecretID"]) for s in container["Secrets"]] == [
        ("cf-token", "sec1")
    ]


@pytest.fixture
def swarm():
    return fake_swarm("traefik:v3", "team/api:1")


@pytest.fixture
def bot(tmp_path, swarm):
    home = tmp_path / "home"
    home.mkdir()
    made = dispatcher(home, swarm, ["console:alice"])
    yield made
    made.close()


async def test_proxy_setup_creates_then_leaves_alone_then_updates(bot, swarm):
    assert [r.text for r in await say(bot, "proxy status")] == [
        "no proxy runs yet: an admin sets it up with `proxy setup`"
    ]
    created = result(await say(bot, "proxy setup"))
    assert (created.ok, created.title) == (True, "proxy shipbot-edge runs (created)")
    assert created.fields == {
        "service": "shipbot-edge",
        "image": "traefik:v3",
        "ports": "http 80, https 443 (host mode)",
        "server": "local",
    }
    assert "shipbot" in swarm.networks
    unchanged = result(await say(bot, "proxy setup"))
    assert unchanged.title == "proxy shipbot-edge runs (unchanged)"
    assert swarm.calls.count("update_service") == 0

    bot.engine.plane.edge = EdgeConfig(refresh_seconds=3)
    updated = result(await say(bot, "proxy setup"))
    assert updated.title == "proxy shipbot-edge runs (updated)"
    assert swarm.calls.count("update_service") == 1
    status = table(await say(bot, "proxy status"))
    assert status.rows == (
        (
            "shipbot-edge",
            "traefik:v3",
            "http 80, https 443 (host mode)",
            "1/1 running",
            "?",
            "local",
        ),
    )
    bot.engine.store.flush_audit()
    audited = [(row["command"], row["result"]) for row in bot.engine.store.audit_log()]
    assert audited == [("proxy setup", "ok")] * 3


async def test_a_service_of_that_name_that_is_not_the_proxy_is_left_alone(bot, swarm):
    swarm.create_service({**proxy_spec(EdgeConfig()), "Labels": {}})
    assert failure(await say(bot, "proxy setup")).message == (
        "a service named shipbot-edge exists and is not shipbot's proxy: remove it, or set "
        "another edge.service in shipbot.yml"
    )


async def test_missing_acme_config_is_named(bot, swarm):
    bot.engine.plane.edge = EdgeConfig(acme=AcmeConfig(ca_certificates="pebble-ca"))
    assert failure(await say(bot, "proxy setup")).message == (
        "edge.acme names the Swarm config pebble-ca, which does not exist: create it first "
        "(docker config create pebble-ca FILE)"
    )


async def test_viewers_may_not_set_the_proxy_up(bot):
    denied = failure(await say(bot, "proxy setup", user="console:mallory"))
    assert denied.kind == DENIED
    assert denied.message.startswith("console:mallory may not admin on every app")


def test_the_certificate_note_says_issuer_and_life_or_that_none_is_issued():
    authority = make_ca("Pebble Intermediate CA 6fc6bf")
    now = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
    leaf, _ = make_leaf(authority, ["shop.example.com"])  # valid until 2026-04-01
    der = leaf.public_bytes(serialization.Encoding.DER)
    assert certificate_note(der, "shop.example.com", now) == (
        "Pebble Intermediate CA 6fc6bf, valid until 2026-04-01 (30 days)"
    )
    default, _ = make_leaf(authority, ["other.example"], cn="TRAEFIK DEFAULT CERT")
    assert (
        certificate_note(default.public_bytes(serialization.Encoding.DER), "shop.example.com", now)
        == "none issued yet (the edge serves TRAEFIK DEFAULT CERT's)"
    )
    assert certificate_note(None, "shop.example.com", now) == "none served"


async def test_setup_says_the_proxy_runs_once_it_serves_its_routes(bot, swarm):
    asked = []

    def ready(address: str, port: int) -> bool:
        asked.append((address, port))
        return len(asked) >= 4  # Traefik answers 404 until its swarm provider has listed

    bot.engine.plane.clock = ManualClock(auto=True)
    bot.engine.plane.edge_ready = ready
    created = result(await say(bot, "proxy setup"))
    assert (created.ok, created.title) == (True, "proxy shipbot-edge runs (created)")
    assert created.details == ("serves its routes (checked 0.8 s after it was created)",)
    assert asked == [("127.0.0.1", 80)] * 4
    assert result(await say(bot, "proxy setup")).details == ()  # unchanged: not restarted
    assert len(asked) == 4


async def test_a_proxy_that_never_serves_its_routes_did_not_start(bot, swarm):
    clock = ManualClock(auto=True)
    bot.engine.plane.clock = clock
    bot.engine.plane.edge_ready = lambda address, port: False
    replies = await say(bot, "proxy setup")
    failed = result(replies)
    assert (failed.ok, failed.title) == (False, "proxy shipbot-edge did not start")
    assert failed.details == (
        "why: it runs but served no route within 90 s (its router on the HTTP port did not "
        "answer): see `docker service logs shipbot-edge` and edge.address / edge.http_port "
        "in shipbot.yml",
    )
    assert 90 <= clock.monotonic() <= 90.25


def test_a_rejected_task_is_quoted_not_the_retry_that_replaced_it():
    """Where the edge image cannot be pulled, Swarm rejects the task and starts another,
    which sits in "preparing": the rejection says why, so it is what the reply quotes."""
    rejected = {
        "UpdatedAt": "2026-12-07T15:00:01.5Z",
        "Status": {
            "State": "rejected",
            "Message": "preparing",
            "Err": "No such image: shipbot-test/traefik:v3",
        },
    }
    retry = {
        "UpdatedAt": "2026-12-07T15:00:06.1Z",
        "Status": {"State": "preparing", "Message": "preparing"},
    }
    assert operate.task_trouble([rejected, retry]) == (
        "rejected: No such image: shipbot-test/traefik:v3"
    )
    assert operate.task_trouble([retry]) == "preparing: preparing"
    older = {**rejected, "UpdatedAt": "2026-12-07T14:59:00Z"}
    older["Status"] = {**rejected["Status"], "Err": "an older error"}
    assert operate.task_trouble([older, retry, rejected]).endswith("traefik:v3")
