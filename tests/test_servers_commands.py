"""Servers from chat, fast tier: admins of everything only, audited, keys stored encrypted
and never in a reply, bad input and unreachable hosts refused with nothing written, and an
environment's server followed by what comes after its deploy (on two fake swarms)."""

from __future__ import annotations

import socket

import pytest

from commands.dispatch import ChatRequest, Dispatcher
from commands.replies import DENIED, Failure, Message, Result, Step, Table
from commands.request import needs_secret
from core.config import BuildConfig, ControlConfig
from core.engine import Engine
from core.secrets import Vault
from core.servers import keys
from core.store import Store
from core.swarm.servers import Servers
from core.swarm.testing import FakeSwarm
from core.swarm.testing.watch import fake_node
from tests.clock import SwarmSteps
from tests.fast_plane import dispatcher, fake_swarm
from tests.test_servers import ADMIN, row, ssh_keygen

SHOP_ADMIN = "console:sam"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def bot(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    bot = dispatcher(home, fake_swarm(), [ADMIN])
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
    assert listed.rows[0][:6] == ("eu-1", "ssh://root@eu-1", "none", "eu-1", "manager", fingerprint)


# an environment on another server: deploy goes there, and so does everything after it
TWO_SERVERS = """\
name: shop
image: shop:1
environments:
  production: {server: eu-1, replicas: 2}
  staging: {replicas: 1}
"""


async def test_an_environment_runs_on_its_server_and_is_driven_there(tmp_path):
    local = fake_swarm("shop:1")
    eu = FakeSwarm()
    eu.publish("shop:1")
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
        server_apps={"eu-1": ["shop"]},
        clock=SwarmSteps(local, eu),  # rollouts move as either fake swarm moves
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
        # a one-off command runs where the release runs
        ran = await say(bot, ADMIN, "run shop --env production --break-glass test -- echo hi")
        assert isinstance(ran[-1], Result) and ran[-1].ok, ran
        assert [argv for _, argv, _ in eu.jobs] == [("echo", "hi")] and local.jobs == []
        # the guard watches the release where it went, and drift reads each server
        assert [g["server"] for g in engine.store.guards("shop", "production")] == ["eu-1"]
        assert await engine.drift("shop") == []
        eu.remove_service("shop-production")
        (missing,) = await engine.drift("shop")
        assert (missing.server, missing.env, missing.kind) == (
            "eu-1",
            "production",
            "service missing",
        )
    finally:
        bot.close()


async def test_a_server_apps_run_on_is_not_removed(bot):
    store = bot.engine.store
    store.add_server(row("eu-1"))
    store.set_env_server("shop", "production", "eu-1", 1.0)
    refused = (await say(bot, ADMIN, "server remove eu-1"))[-1]
    assert isinstance(refused, Failure)
    assert refused.message == (
        "shop (production) run on eu-1: deploy them elsewhere (app.yml's server:) or remove "
        "them (`apps remove APP --env ENV`) first; nothing was changed"
    )
    assert store.server("eu-1") is not None
    store.set_env_server("shop", "production", "local", 2.0)
    assert (await say(bot, ADMIN, "server remove eu-1"))[-1].ok
    assert store.server("eu-1") is None


@pytest.mark.parametrize("opened", [{}, {"eu-1": ["web", "shop-*"]}])
async def test_a_server_not_opened_to_an_app_is_refused_before_anything_changes(tmp_path, opened):
    """app.yml is written by whoever may deploy the app: it cannot put the app on another
    team's server until shipbot.yml's server_apps opens that server to it."""
    local = fake_swarm("shop:1")
    eu = FakeSwarm()
    eu.publish("shop:1")
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
        server_apps=opened,
        clock=SwarmSteps(local, eu),
    )
    bot = Dispatcher(engine, ControlConfig(admins=[ADMIN]))
    try:
        assert (await say(bot, ADMIN, f"apps add shop --path {folder}"))[-1].ok
        refused = (await say(bot, ADMIN, "deploy shop --env production"))[-1]
        assert isinstance(refused, Failure)
        assert refused.message == (
            "shop: app.yml puts it on server 'eu-1', which is not open to it; an admin opens "
            "it in shipbot.yml (server_apps: {eu-1: [shop]})"
        )
        assert eu.services() == [] and local.services() == []
        assert engine.store.env_server("shop", "production") is None
        assert engine.store.releases("shop", "production") == []
        # the environment on the control plane's own server is not affected
        assert (await say(bot, ADMIN, "deploy shop --env staging"))[-1].ok
    finally:
        bot.close()


async def test_a_build_server_builds_and_the_image_is_carried_to_where_it_runs(tmp_path):
    """shipbot.yml's build.server: images are built on that engine, never on the server
    whose apps serve traffic, then carried there (docker save | docker load)."""
    local = fake_swarm()
    builder = FakeSwarm()
    home = tmp_path / "home"
    home.mkdir()
    folder = tmp_path / "built"
    folder.mkdir()
    (folder / "Dockerfile").write_text("FROM busybox\n")
    (folder / "app.yml").write_text("name: built\nbuild: .\n")
    engine = Engine(
        Store(home / "shipbot.db"),
        servers=Servers({"local": lambda: local, "builds": lambda: builder}),
        home=home,
        vault=Vault.open(home),
        build=BuildConfig(server="builds"),
        clock=SwarmSteps(local, builder),
    )
    bot = Dispatcher(engine, ControlConfig(admins=[ADMIN]))
    try:
        assert (await say(bot, ADMIN, f"apps add built --path {folder}"))[-1].ok
        replies = await say(bot, ADMIN, "deploy built --break-glass test")
        assert isinstance(replies[-1], Result) and replies[-1].ok, replies
        said = [r.text for r in replies if isinstance(r, Step)]
        assert "built on builds: carrying shipbot/built:1 to local" in said
        assert [b["tag"] for b in builder.builds] == ["shipbot/built:1"] and local.builds == []
        assert local.image_id("shipbot/built:1") == builder.image_id("shipbot/built:1")
        assert [s["Spec"]["Name"] for s in local.services()] == ["built-production"]
        assert builder.services() == []
    finally:
        bot.close()


async def test_a_node_that_is_down_is_named_by_status_and_server_list(tmp_path, monkeypatch):
    """Swarm reports a worker down: `status` and `server list` name it, not only
    `server check`; a swarm whose manager cannot be reached says so in its rows."""
    local = fake_swarm()
    eu = FakeSwarm()
    eu.node_list = [fake_node("n1", "eu-node1"), fake_node("n2", "eu-node2", "worker")]
    eu.node_list[0]["Status"]["Addr"] = "192.0.2.11"
    eu.node_list[1]["Status"].update(State="down", Addr="192.0.2.12")
    home = tmp_path / "home"
    home.mkdir()
    engine = Engine(
        Store(home / "shipbot.db"),
        servers=Servers({"local": lambda: local, "eu-1": lambda: eu}),
        home=home,
        vault=Vault.open(home),
        clock=SwarmSteps(local, eu),
    )
    bot = Dispatcher(engine, ControlConfig(admins=[ADMIN]))
    try:
        engine.store.add_server({**row("eu-1"), "url": "ssh://root@192.0.2.11"})
        engine.store.add_server({**row("eu-2"), "url": "ssh://root@192.0.2.12", "swarm": "eu-1"})
        engine.store.add_server({**row("eu-9"), "url": "ssh://root@192.0.2.99", "swarm": "eu-9"})
        engine.store.set_env_server("shop", "production", "eu-1", 1.0)
        warning = (
            "⚠️ node eu-node2 of server eu-1 is down: Swarm runs no task there until it is back"
        )
        assert warning in [
            r.text for r in await say(bot, ADMIN, "status") if isinstance(r, Message)
        ]
        listed = await say(bot, ADMIN, "server list")
        table = next(r for r in listed if isinstance(r, Table))
        assert [(r[0], r[-1]) for r in table.rows] == [
            ("eu-1", "ready"),
            ("eu-2", "down"),
            ("eu-9", "unknown (eu-9 cannot be read: `server check eu-9`)"),
        ]
        assert listed[-1] == Message(warning)
    finally:
        bot.close()
