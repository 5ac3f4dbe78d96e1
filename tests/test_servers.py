"""Servers, fast tier, the pure parts: addresses, host-key records and their pin, login keys,
the bootstrap's argv builders, app.yml placement, the store and the registry's lookup.
The chat commands are in test_servers_commands.py; SSH and the swarm themselves run against
real nodes in test_servers_docker.py."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import paramiko
import pytest

from core.appspec import AppSpecError, parse_app_config
from core.deploy.spec import placement, service_spec
from core.errors import DeployError
from core.servers import bootstrap, keys
from core.servers.errors import HostKeyChanged, ServerError
from core.servers.hostkeys import HostKey, Pin, disabled_host_keys
from core.servers.urls import ServerURL, parse_url
from core.store import Store
from core.swarm.servers import Servers
from tests.fast_plane import fake_swarm

ADMIN = "console:root"
SHOP_ADMIN = "console:sam"


# addresses
@pytest.mark.parametrize(
    ("text", "url", "docker"),
    [
        (
            "ssh://root@203.0.113.7",
            ServerURL("root", "203.0.113.7", 22),
            "ssh://root@203.0.113.7:22",
        ),
        (
            "ssh://deploy@eu-1.example.com:2222",
            ServerURL("deploy", "eu-1.example.com", 2222),
            "ssh://deploy@eu-1.example.com:2222",
        ),
        (
            "ssh://root@[2001:db8::1]:22",
            ServerURL("root", "2001:db8::1", 22),
            "ssh://root@[2001:db8::1]:22",
        ),
    ],
)
def test_server_urls_parse(text, url, docker):
    assert parse_url(text) == url
    assert url.docker_url == docker
    assert parse_url(str(url)) == url


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("root@203.0.113.7", "is not a server address"),
        ("http://root@host", "is not a server address"),
        ("ssh://root:hunter2@host", "no password in the address"),
        ("ssh://host", "the user is missing"),
        ("ssh://Root@host", "not a login name"),
        ("ssh://root@host/var", "is not a server address"),
        ("ssh://root@host?x=1", "is not a server address"),
        ("ssh://root@-host", "not a host name or IP address"),
        ("ssh://root@1.2.3", "not a host name or IP address"),
        ("ssh://root@host:0", "out of range"),
        ("ssh://root@host:65536", "is not a server address"),
    ],
)
def test_bad_server_urls_say_what_to_write(text, why):
    with pytest.raises(ServerError) as caught:
        parse_url(text)
    assert why in str(caught.value)


# host keys
def ssh_keygen(tmp_path: Path, kind: str) -> tuple[paramiko.PKey, str]:
    path = tmp_path / f"host_{kind}"
    # RSA at 2048 bits, not ssh-keygen's 3072: finding the primes took 0.4-2 s of CPU
    size = ["-b", "2048"] if kind == "rsa" else []
    subprocess.run(["ssh-keygen", "-q", "-t", kind, *size, "-N", "", "-f", str(path)], check=True)
    shown = subprocess.run(["ssh-keygen", "-lf", f"{path}.pub"], capture_output=True, text=True)
    pkey = keys.load(path.read_text())
    return pkey, shown.stdout.split()[1]


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa", "rsa"])
def test_host_key_fingerprint_is_ssh_keygens(tmp_path, kind):
    pkey, fingerprint = ssh_keygen(tmp_path, kind)
    record = HostKey.of(pkey)
    assert record.fingerprint == fingerprint
    assert (
        record.line("203.0.113.7", 2222)
        == f"[203.0.113.7]:2222 {pkey.get_name()} {pkey.get_base64()}"
    )
    assert record.line("203.0.113.7", 22).startswith("203.0.113.7 ")


def test_pin_trusts_the_first_key_and_then_only_it(tmp_path):
    first, _ = ssh_keygen(tmp_path, "ed25519")
    other, other_fp = ssh_keygen(tmp_path / ".." / tmp_path.name, "ecdsa")
    client = paramiko.SSHClient()
    new = Pin("eu-1", None)
    new.missing_host_key(client, "h", first)
    assert new.presented == HostKey.of(first)

    pinned = Pin("eu-1", HostKey.of(first))
    pinned.missing_host_key(client, "h", first)
    with pytest.raises(HostKeyChanged) as caught:
        pinned.missing_host_key(client, "h", other)
    message = str(caught.value)
    assert f"shipbot recorded {HostKey.of(first).fingerprint} (ssh-ed25519)" in message
    assert f"now presents {other_fp}" in message
    assert "Nothing was done" in message
    assert f"`server trust eu-1 {other_fp}`" in message
    assert "/etc/ssh/ssh_host_ecdsa_key.pub" in message


def test_only_the_pinned_key_algorithm_is_offered():
    assert disabled_host_keys(None) == {}
    ed = disabled_host_keys(HostKey("ssh-ed25519", "x"))["keys"]
    assert "ssh-ed25519" not in ed and "rsa-sha2-512" in ed
    rsa = disabled_host_keys(HostKey("ssh-rsa", "x"))["keys"]
    assert not {"ssh-rsa", "rsa-sha2-256", "rsa-sha2-512"} & set(rsa) and "ssh-ed25519" in rsa


# login keys
def test_generated_keys_load_even_pasted_on_one_line():
    private = keys.generate()
    assert private.startswith("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    pkey = keys.load(private)
    assert keys.load(" ".join(private.splitlines())).get_base64() == pkey.get_base64()
    line = keys.public_line(pkey, "shipbot-default")
    assert line.split()[0] == "ssh-ed25519" and line.endswith(" shipbot-default")
    assert base64.b64decode(line.split()[1])


def test_keys_that_cannot_be_used_are_named_without_echoing(tmp_path):
    locked = tmp_path / "locked"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "pass-phrase", "-f", str(locked)], check=True
    )
    with pytest.raises(ServerError, match="protected by a passphrase"):
        keys.load(locked.read_text())
    with pytest.raises(ServerError) as caught:
        keys.load("not-a-key-but-a-password-typed-by-mistake")
    assert "not an unencrypted SSH private key" in str(caught.value)
    assert "typed-by-mistake" not in str(caught.value)


# bootstrap builders
def test_bootstrap_commands_are_argv_lists():
    assert bootstrap.install_docker("root") == [
        ["apt-get", "update", "-q"],
        ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-q",
         "--no-install-recommends", "docker.io"],
    ]  # fmt: skip
    assert bootstrap.install_docker("deploy")[0] == ["sudo", "-n", "apt-get", "update", "-q"]
    assert bootstrap.swarm_init("10.0.0.5") == [
        "docker", "swarm", "init", "--advertise-addr", "10.0.0.5",
    ]  # fmt: skip
    assert bootstrap.join_token("worker") == ["docker", "swarm", "join-token", "-q", "worker"]
    assert bootstrap.swarm_join("10.0.0.6", "SWMTKN-1-x", "10.0.0.5:2377") == [
        "docker", "swarm", "join", "--advertise-addr", "10.0.0.6", "--token", "SWMTKN-1-x",
        "10.0.0.5:2377",
    ]  # fmt: skip


def test_swarm_state_is_read_from_docker_info():
    active = bootstrap.SwarmState.parse(
        '{"NodeID":"abc123","NodeAddr":"10.0.0.5","LocalNodeState":"active",'
        '"ControlAvailable":true,"Error":"","RemoteManagers":null}'
    )
    assert active == bootstrap.SwarmState("active", True, "abc123", "10.0.0.5")
    bare = bootstrap.SwarmState.parse('{"LocalNodeState":"inactive","ControlAvailable":false}')
    assert bare == bootstrap.SwarmState("inactive", False, "", "")


# app.yml: server and placement
APP = """\
name: web
image: web:1
environments:
  production:
    server: eu-1
    replicas: 3
    placement:
      constraints: ["node.role != manager", node.labels.zone==eu]
      spread: node.id
      max_per_node: 1
"""


def test_environments_choose_their_server_and_placement():
    config = parse_app_config(APP)
    assert config.base.server is None and placement(config.base) == {}
    assert "Placement" not in service_spec(config.base, "production", 1, "x")["TaskTemplate"]
    spec = config.for_env("production")
    assert spec.server == "eu-1"
    assert service_spec(spec, "production", 1, "x")["TaskTemplate"]["Placement"] == {
        "Constraints": ["node.role!=manager", "node.labels.zone==eu"],
        "Preferences": [{"Spread": {"SpreadDescriptor": "node.id"}}],
        "MaxReplicas": 1,
    }


@pytest.mark.parametrize(
    ("override", "error"),
    [
        ("server: EU", "environments.production.server: string should match pattern"),
        (
            "placement: {constraints: ['node.role==manager; rm -rf /']}",
            "environments.production.placement.constraints: 'node.role==manager; rm -rf /' is "
            "not a placement constraint: write ATTRIBUTE==VALUE",
        ),
        ("placement: {spread: hostname}", "'hostname' is not a node attribute to spread over"),
        (
            "placement: {max_per_node: 0}",
            "environments.production.placement.max_per_node: must be ≥ 1",
        ),
    ],
)
def test_bad_placement_names_its_key(override, error):
    with pytest.raises(AppSpecError) as caught:
        parse_app_config(f"name: web\nimage: web:1\nenvironments:\n  production: {{{override}}}\n")
    assert error in str(caught.value)


# store
def row(name: str, **extra) -> dict:
    return {
        "name": name, "url": f"ssh://root@{name}", "key": "default", "host_key_kind": "ssh-ed25519",
        "host_key": "AAAA", "role": "manager", "swarm": name, "added_by": ADMIN, "added_at": 1.0,
        **extra,
    }  # fmt: skip


def test_servers_table(tmp_path):
    store = Store(tmp_path / "s.db")
    assert store.add_server(row("eu-1"))
    assert not store.add_server(row("eu-1", url="ssh://root@elsewhere"))
    assert store.add_server(row("eu-2", role="worker", swarm="eu-1"))
    assert [r["name"] for r in store.servers("eu-1")] == ["eu-1", "eu-2"]
    assert not store.trust_host_key("eu-1", "ssh-ed25519", "BBBB", was="ZZZZ")
    assert store.server("eu-1")["host_key"] == "AAAA"
    assert store.trust_host_key("eu-1", "ssh-ed25519", "BBBB", was="AAAA")
    assert store.server("eu-1")["host_key"] == "BBBB"
    assert store.remove_server("eu-2") and not store.remove_server("eu-2")
    assert store.add_ssh_key("default", "token", "ssh-ed25519 AAAA x", ADMIN, 1.0)
    assert not store.add_ssh_key("default", "other", "ssh-ed25519 BBBB x", ADMIN, 2.0)
    store.close()


# the registry
async def test_registry_finds_added_servers_through_its_lookup():
    swarm = fake_swarm()
    servers = Servers({"local": lambda: swarm})
    with pytest.raises(DeployError, match="no server named 'eu-1'"):
        await servers.client("eu-1")
    servers.lookup = lambda name: (lambda: swarm) if name == "eu-1" else None
    assert await servers.client("eu-1") is swarm
    assert [e async for e in servers.spread("local", "img")] == []
    servers.forget("eu-1")


def test_start_engine_uses_the_hosts_init_system():
    assert bootstrap.start_engine("root", systemd=True) == [
        "systemctl", "enable", "--now", "docker",
    ]  # fmt: skip
    assert bootstrap.start_engine("deploy", systemd=False) == [
        "sudo", "-n", "service", "docker", "start",
    ]  # fmt: skip
