"""A server whose SSH does not answer is named, with why, in every reply someone who is not
an admin sees (`status`, `status --drift`, `db list`, `backup report`, `certs`, a deploy
there), in its outage alert and in the outage other processes are told: never its SSH
login, host or port, which only admins see (`server list`, `server check`).

Through the real dispatcher and the real SSH layer: the server ``eu-1`` was deployed to
and holds a database while it answered (an in-memory swarm), then it is the server added
over SSH it would be, at a loopback port where nothing listens (the connection is refused)
or where a listener never says a word (the SSH handshake times out)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

import core.servers.docker_ssh
import core.servers.ssh
from commands import watching
from commands.dispatch import Dispatcher
from commands.replies import Failure, Message, Result, Table, decode
from core.config import BackupsConfig, ControlConfig, NotifyRoute
from core.engine import Engine
from core.errors import CoreError
from core.secrets import Vault
from core.store import Store
from core.swarm.servers import Servers
from tests.chat import failure, result, say
from tests.clock import SwarmSteps
from tests.fast_plane import fake_swarm
from tests.moto_s3 import s3_config
from tests.test_servers import ADMIN, row

VIEWER, DEPLOYER = "console:vera", "console:dana"
LOGIN = "opsroot"  # the SSH user: in no reply
SHOP = """\
name: shop
image: shop:1
databases: [eudb]
environments:
  production: {server: eu-1, replicas: 1}
"""


def closed_port() -> Iterator[tuple[int, str]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    yield port, "connection refused"


def silent_port(monkeypatch) -> Iterator[tuple[int, str]]:
    """A listener that takes the connection and never sends sshd's banner; the SSH waits
    cut short, so its time-out costs a fraction of a second."""
    monkeypatch.setattr(core.servers.ssh, "CONNECT_SECONDS", 0.3)
    monkeypatch.setattr(core.servers.docker_ssh, "CONNECT_SECONDS", 0.3)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1], "SSH handshake failed"


@pytest.fixture(params=["refused", "silent"])
async def away(request, tmp_path, monkeypatch):
    """The dispatcher, eu-1's port and the reason its SSH gives; shop (production) and
    database eudb live on eu-1, which stopped answering."""
    ports = closed_port() if request.param == "refused" else silent_port(monkeypatch)
    port, why = next(ports)
    local, eu = fake_swarm("shop:1", "postgres:16"), fake_swarm("shop:1", "postgres:16")
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "app.yml").write_text(SHOP)
    servers = Servers({"local": lambda: local, "eu-1": lambda: eu})
    engine = Engine(
        Store(home / "shipbot.db"),
        servers=servers,
        home=home,
        vault=Vault.open(home),
        server_apps={"eu-1": ["shop"]},
        clock=SwarmSteps(local, eu),
    )
    config = ControlConfig(
        admins=[ADMIN],
        # read from the store only: no S3 is reached by the report
        backups=BackupsConfig(s3=s3_config("http://127.0.0.1:9", "disclose"), min_bytes=100),
        notify=[NotifyRoute(platform="console", channel="ops", kinds=["alerts"])],
    )
    bot = Dispatcher(engine, config)
    store = engine.store
    for user, role in ((VIEWER, "viewer"), (DEPLOYER, "deployer")):
        assert store.add_grant(user=user, role=role, app="shop", env="*", granted_by=ADMIN)
    try:
        assert result(await say(bot, f"apps add shop --path {tmp_path / 'shop'}", ADMIN)).ok
        assert result(await say(bot, "db create postgres eudb --server eu-1", ADMIN)).ok
        assert result(await say(bot, "db attach eudb shop", ADMIN)).ok
        assert result(await say(bot, "deploy shop --env production", ADMIN)).ok
        assert result(await say(bot, "ssh-key create default", ADMIN)).ok
        # eu-1 is now what a server added from chat is: reached over SSH, and away
        servers.forget("eu-1")
        del servers.connectors["eu-1"]
        assert store.add_server(row("eu-1", url=f"ssh://{LOGIN}@127.0.0.1:{port}"))
        yield bot, port, why
    finally:
        bot.close()
        next(ports, None)


def assert_discreet(text: str, port: int, why: str) -> None:
    """``text`` names eu-1 and why it is away, and nothing of how SSH reaches it."""
    for secret in (LOGIN, "127.0.0.1", str(port), "ssh://", "@"):
        assert secret not in text, (secret, text)
    assert f"cannot reach server eu-1 over SSH ({why})" in text, text
    assert "`server check eu-1`" in text, text


def said(replies) -> str:
    return "\n".join(map(repr, replies))


async def test_status_names_the_server_and_why_not_its_address(away):
    bot, port, why = away
    replies = await say(bot, "status", VIEWER)
    assert_discreet(said(replies), port, why)
    (shown,) = [r for r in replies if isinstance(r, Table)]
    assert [r[:4] for r in shown.rows] == [
        ("shop", "production", "1", "unknown (server eu-1 unreachable)")
    ]
    (line,) = [r.text for r in replies if isinstance(r, Message)]
    assert line.startswith("⚠️ server eu-1 unreachable: cannot reach server eu-1 over SSH")


@pytest.mark.parametrize(
    ("text", "told"),
    [
        ("status --drift", "⚠️ drift not checked on eu-1 unreachable: "),
        ("db list", "⚠️ server eu-1 unreachable: "),
        ("backup report", "⚠️ server eu-1 unreachable: "),
        ("certs", "⚠️ certificates not read on server eu-1: "),
    ],
)
async def test_a_viewers_reads_name_the_server_and_why_not_its_address(away, text, told):
    bot, port, why = away
    replies = await say(bot, text, VIEWER)
    assert not [r for r in replies if isinstance(r, Failure)], replies
    assert [r.text for r in replies if isinstance(r, Message) and r.text.startswith(told)]
    assert_discreet(said(replies), port, why)


async def test_a_deploy_there_names_the_server_and_why_not_its_address(away):
    bot, port, why = away
    refused = failure(await say(bot, "deploy shop --env production", DEPLOYER))
    assert "eu-1" in refused.message
    assert_discreet(said([refused]), port, why)


async def test_the_outage_alert_and_the_stored_outage_name_no_address(away):
    bot, port, why = away
    plane = bot.engine.plane
    watch = watching.watcher(plane, bot.config, bot.notifier, "eu-1")
    with pytest.raises(CoreError):
        await watch.check()
    stored = bot.engine.store.server_outage("eu-1")
    assert stored is not None
    assert_discreet(json.dumps(stored), port, why)
    posted = [decode(m["payload"]) for m in bot.engine.store.due_messages("console", 1e12)]
    (alert,) = [p for p in posted if isinstance(p, Result)]
    assert alert.title.startswith("🔌 server eu-1 unreachable since ")
    assert_discreet(said(posted), port, why)
