"""Servers, fast tier: addresses, host-key records and their pin, login keys, the bootstrap's
argv builders, app.yml placement, the store, and the chat commands' rules (admins of
everything only, audited, keys never in a reply). The SSH and swarm parts themselves run
against three real nodes in test_servers_docker.py."""

from __future__ import annotations

import base64
import socket
import subprocess
from pathlib import Path

import paramiko
import pytest

from commands.dispatch import ChatRequest, Dispatcher
from commands.replies import DENIED, Failure, Message, Result, Table
from commands.request import needs_secret
from core.appspec import AppSpecError, parse_app_config
from core.config import ControlConfig
from core.deploy.spec import placement, service_spec
from core.engine import Engine
from core.errors import DeployError
from core.secrets import Vault
from core.servers import bootstrap, keys
from core.servers.errors import HostKeyChanged, ServerError
from core.servers.hostkeys import HostKey, Pin, disabled_host_keys
from core.servers.registry import Servers
from core.servers.urls import ServerURL, parse_url
from core.store import Store
from core.swarm import rollout
from core.swarm.fake import FakeSwarm
from tests.fast_plane import dispatcher, fake_swarm

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
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(path)], check=True)
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
async def test_registry_finds_added_servers_through_its_lookup(monkeypatch):
    swarm = fake_swarm(monkeypatch)
    servers = Servers({"local": lambda: swarm})
    with pytest.raises(DeployError, match="no server named 'eu-1'"):
        await servers.client("eu-1")
    servers.lookup = lambda name: (lambda: swarm) if name == "eu-1" else None
    assert await servers.client("eu-1") is swarm
    assert [e async for e in servers.spread("local", "img")] == []
    servers.forget("eu-1")


# the chat commands
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def bot(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    bot = dispatcher(home, fake_swarm(monkeypatch), [ADMIN])
    bot.engine.store.add_grant(user=SHOP_ADMIN, role="admin", app="shop", env="*", granted_by=ADMIN)
    yield bot
    bot.close()


async def say(bot, user: str, text: str, secret: str | None = None):
    return await bot.run(ChatRequest("console", user, "C-test", text, secret))


async def test_keys_from_chat_are_stored_encrypted_and_never_shown(bot):
    made = await say(bot, ADMIN, "ssh-key create default")
    assert isinstance(made[-1], Result) and made[-1].ok
    public = made[-1].details[0]
    assert public.startswith("ssh-ed25519 ") and public.endswith(" shipbot-default")
    stored = bot.engine.store.ssh_key("default")
    assert "PRIVATE KEY" not in stored["private"]
    assert "PRIVATE KEY" in bot.engine.vault.decrypt(stored["private"])
    assert (await say(bot, ADMIN, "ssh-key show default")) == [Message(public)]
    again = await say(bot, ADMIN, "ssh-key create default")
    assert isinstance(again[-1], Failure) and "a key named default exists" in again[-1].message

    assert needs_secret("ssh-key import ops").startswith("private key ops, unencrypted")
    assert needs_secret("ssh-key create ops") is None
    no_form = await say(bot, ADMIN, "ssh-key import ops")
    assert "never the channel" in no_form[-1].message
    private = keys.generate()
    imported = await say(bot, ADMIN, "ssh-key import ops", secret=private)
    assert imported[-1].ok
    assert all(private.splitlines()[1] not in repr(r) for r in imported)
    listed = await say(bot, ADMIN, "ssh-key list")
    assert [r[0] for r in listed[-1].rows] == ["default", "ops"]
    audit = bot.engine.store.audit_log(limit=20)
    assert [a["command"] for a in audit if a["result"] == "ok"][:2] == [
        "ssh-key import ops",
        "ssh-key create default",
    ]
    assert all(private.splitlines()[1] not in str(a) for a in audit)


async def test_an_unreachable_server_is_refused_and_nothing_is_written(bot):
    await say(bot, ADMIN, "ssh-key create default")
    port = closed_port()
    replies = await say(bot, ADMIN, f"server add eu-1 ssh://root@127.0.0.1:{port}")
    assert isinstance(replies[-1], Failure), replies
    assert replies[-1].message.startswith(
        f"cannot reach server eu-1 at ssh://root@127.0.0.1:{port} over SSH ("
    )
    assert replies[-1].message.endswith("nothing was changed")
    assert bot.engine.store.servers() == []
    assert (await say(bot, ADMIN, "server list"))[-1] == Message(
        "no servers yet (apps run on `local`): `server add` adds one"
    )
    assert bot.engine.store.audit_log(limit=1)[0]["command"].startswith("server add eu-1")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("server add local ssh://root@h", "'local' cannot name a server"),
        ("server add eu-1 ssh://root@h --key nope", "no SSH key named nope: `ssh-key create"),
        ("server add eu-2 ssh://root@h --join eu-1", "--join names a manager added before"),
        ("server add eu-1 ssh://root@h --role worker", "a server that starts its own swarm"),
        ("server add eu-1 ssh://root@h --join eu-1 --role boss", "--role is manager or worker"),
        ("server add eu-1 http://h", "is not a server address"),
        ("server check eu-1", "no server named 'eu-1': `server list` shows them"),
        ("server trust eu-1 SHA256:x", "no server named 'eu-1'"),
        ("server remove eu-1", "no server named 'eu-1'"),
    ],
)
async def test_server_commands_refuse_bad_input_before_any_ssh(bot, text, message):
    await say(bot, ADMIN, "ssh-key create default")
    replies = await say(bot, ADMIN, text)
    assert isinstance(replies[-1], Failure) and message in replies[-1].message, replies
    assert bot.engine.store.servers() == []


@pytest.mark.parametrize(
    "text",
    [
        "server add eu-1 ssh://root@h",
        "server list",
        "server check eu-1",
        "server trust eu-1 SHA256:x",
        "server remove eu-1",
        "ssh-key create default",
        "ssh-key show default",
        "ssh-key list",
    ],
)
async def test_only_admins_of_everything_drive_servers(bot, text):
    """An admin of one app holds no server: a server runs every app deployed to it."""
    replies = await say(bot, SHOP_ADMIN, text)
    assert len(replies) == 1 and isinstance(replies[0], Failure) and replies[0].kind == DENIED
    audit = bot.engine.store.audit_log(limit=1)[0]
    assert (audit["user"], audit["command"], audit["result"]) == (SHOP_ADMIN, text, "denied")
    assert bot.engine.store.ssh_keys() == [] and bot.engine.store.servers() == []


async def test_server_list_shows_the_pinned_fingerprint(bot, tmp_path):
    pkey, fingerprint = ssh_keygen(tmp_path, "ed25519")
    bot.engine.store.add_server(row("eu-1", host_key=pkey.get_base64()))
    listed = (await say(bot, ADMIN, "server list"))[-1]
    assert isinstance(listed, Table)
    assert listed.rows[0][:5] == ("eu-1", "ssh://root@eu-1", "eu-1", "manager", fingerprint)


# an environment on another server: deploy goes there, and so does everything after it
TWO_SERVERS = """\
name: shop
image: shop:1
environments:
  production: {server: eu-1, replicas: 2}
  staging: {replicas: 1}
"""


async def test_an_environment_runs_on_its_server_and_is_driven_there(tmp_path, monkeypatch):
    local = fake_swarm(monkeypatch, "shop:1")
    eu = FakeSwarm()
    eu.add_image("shop:1")
    # rollouts are watched on one clock: it moves as either fake swarm moves
    monkeypatch.setattr(rollout, "clock", lambda: local.now + eu.now)
    home = tmp_path / "home"
    home.mkdir()
    folder = tmp_path / "shop"
    folder.mkdir()
    (folder / "app.yml").write_text(TWO_SERVERS)
    engine = Engine(
        Store(home / "shipbot.db"),
        servers=Servers({"local": lambda: local, "eu-1": lambda: eu}),
        home=home,
        vault=Vault.open(home),
    )
    bot = Dispatcher(engine, ControlConfig(admins=[ADMIN]))
    try:
        assert (await say(bot, ADMIN, f"apps add shop --path {folder}"))[-1].ok
        for text in ("deploy shop --env production", "deploy shop --env staging"):
            replies = await say(bot, ADMIN, text)
            assert isinstance(replies[-1], Result) and replies[-1].ok, replies
        assert [s["Spec"]["Name"] for s in eu.services()] == ["shop-production"]
        assert [s["Spec"]["Name"] for s in local.services()] == ["shop-staging"]
        assert engine.store.env_server("shop", "production") == "eu-1"

        scaled = await say(bot, ADMIN, "scale shop 3 --env production")
        assert scaled[-1].ok, scaled
        replicas = eu.inspect_service("shop-production")["Spec"]["Mode"]["Replicated"]
        assert replicas == {"Replicas": 3}
        shown = [r for r in await say(bot, ADMIN, "status shop") if isinstance(r, Table)][0]
        assert [row[:2] for row in shown.rows] == [("shop", "production"), ("shop", "staging")]
    finally:
        bot.close()


def test_start_engine_uses_the_hosts_init_system():
    assert bootstrap.start_engine("root", systemd=True) == [
        "systemctl", "enable", "--now", "docker",
    ]  # fmt: skip
    assert bootstrap.start_engine("deploy", systemd=False) == [
        "sudo", "-n", "service", "docker", "start",
    ]  # fmt: skip


async def test_a_server_apps_run_on_is_not_removed(bot):
    store = bot.engine.store
    store.add_server(row("eu-1"))
    store.set_env_server("shop", "production", "eu-1", 1.0)
    refused = (await say(bot, ADMIN, "server remove eu-1"))[-1]
    assert isinstance(refused, Failure)
    assert refused.message == (
        "shop (production) run on eu-1: deploy them elsewhere (app.yml's server:) first"
    )
    assert store.server("eu-1") is not None
    store.set_env_server("shop", "production", "local", 2.0)
    assert (await say(bot, ADMIN, "server remove eu-1"))[-1].ok
    assert store.server("eu-1") is None
