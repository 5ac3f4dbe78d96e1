"""Bad input on a fleet (issue 23): a server no one added, a server not open to the app
(`server_apps`), a database on one server for an app on another, and `server remove` of a
server that still holds databases or a swarm others joined through it. Each is one clear
error naming the server and what to do, and nothing changes: the store's rows (the audit
apart) and every fake engine's services, networks and volumes are as they were."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from commands.dispatch import Dispatcher
from core.config import ControlConfig
from core.engine import Engine
from core.secrets import Vault
from core.store import Store
from core.swarm.servers import Servers
from core.swarm.testing import FakeSwarm
from tests.chat import failure, result, say
from tests.clock import SwarmSteps
from tests.fast_plane import fake_swarm
from tests.test_servers import row

ADMIN = "console:root"
SERVERS = ("local", "eu-1", "eu-2")
APPS = {  # app → (its server, the databases its app.yml lists)
    "shop": ("eu-1", ""),
    "blog": ("eu-2", "databases: [eudb]\n"),
    "wiki": ("eu-2", ""),
    "rogue": ("eu-1", ""),
    "lost": ("eu-9", ""),
}
# what a refusal may write: its audit row, and the outbox/locks a command passes through
NOT_STATE = {"audit", "outbox", "locks", "deliveries", "_sqlite_migrations"}


def rows_of(store: Store) -> dict[str, list[dict]]:
    return {
        table: list(store.db[table].rows)
        for table in store.db.table_names()
        if table not in NOT_STATE
    }


def engines(swarms: dict[str, FakeSwarm]) -> dict[str, str]:
    return {
        name: json.dumps(
            [s.services(), sorted(s.networks), sorted(s.volumes)], sort_keys=True, default=str
        )
        for name, s in swarms.items()
    }


@pytest.fixture
async def fleet(tmp_path: Path):
    """eu-1 (with eu-3, a worker, joined to its swarm) runs shop and database eudb; eu-2 is
    open to blog and wiki; no server is open to rogue, and lost names a server no one
    added."""
    swarms = {name: fake_swarm("postgres:16", *(f"{a}:1" for a in APPS)) for name in SERVERS}
    home = tmp_path / "home"
    home.mkdir()
    engine = Engine(
        Store(home / "shipbot.db"),
        servers=Servers({name: (lambda s=s: s) for name, s in swarms.items()}),
        home=home,
        vault=Vault.open(home),
        server_apps={"eu-1": ["shop"], "eu-2": ["blog", "wiki"], "eu-9": ["lost"]},
        clock=SwarmSteps(*swarms.values()),
    )
    for name in ("eu-1", "eu-2"):
        engine.store.add_server(row(name))
    engine.store.add_server(row("eu-3", role="worker", swarm="eu-1"))
    bot = Dispatcher(engine, ControlConfig(admins=[ADMIN]))
    for app, (server, listed) in APPS.items():
        (tmp_path / app).mkdir()
        (tmp_path / app / "app.yml").write_text(
            f"name: {app}\nimage: {app}:1\n{listed}environments:\n"
            f"  production: {{server: {server}}}\n"
        )
        assert result(await say(bot, f"apps add {app} --path {tmp_path / app}", ADMIN)).ok
    assert result(await say(bot, "db create postgres eudb --server eu-1", ADMIN)).ok
    assert result(await say(bot, "deploy shop", ADMIN)).ok
    assert result(await say(bot, "deploy wiki", ADMIN)).ok
    yield bot, swarms
    bot.close()


async def refused(
    bot: Dispatcher, swarms: dict[str, FakeSwarm], text: str, audited: bool = True
) -> str:
    """``text``'s error, once it is shown that nothing changed (and, for a command that
    changes state, that its refusal is audited)."""
    store, before = bot.engine.store, engines(swarms)
    rows = rows_of(store)
    message = failure(await say(bot, text, ADMIN)).message
    assert rows_of(store) == rows, text
    assert engines(swarms) == before, text
    store.flush_audit()
    last = store.audit_log(limit=1)[0]
    assert (last["command"] == text and last["result"] == "failed") == audited, text
    return message


@pytest.mark.parametrize(
    "text",
    [
        "proxy setup --server eu-9",
        "proxy status --server eu-9",
        "certs --server eu-9",
        "db create postgres newdb --server eu-9",
    ],
)
async def test_a_server_option_naming_no_server(fleet, text):
    bot, swarms = fleet
    message = await refused(bot, swarms, text, audited=text.split()[1] in ("setup", "create"))
    assert message == (
        "no server named 'eu-9' (known: eu-1, eu-2, eu-3, local); `server list` shows the "
        "ones added from chat; nothing was changed"
    )


async def test_app_yml_naming_no_server(fleet):
    bot, swarms = fleet
    assert await refused(bot, swarms, "deploy lost") == (
        "lost: app.yml puts it on server 'eu-9', which shipbot does not know (known: eu-1, "
        "eu-2, eu-3, local): an admin adds it with `server add eu-9 ssh://USER@HOST`, or "
        "app.yml names one of those; nothing was changed"
    )


async def test_a_server_not_open_to_the_app(fleet):
    bot, swarms = fleet
    assert await refused(bot, swarms, "deploy rogue") == (
        "rogue: app.yml puts it on server 'eu-1', which is not open to it; an admin opens it "
        "in shipbot.yml (server_apps: {eu-1: [rogue]})"
    )


async def test_a_database_on_another_server(fleet):
    bot, swarms = fleet
    reason = (
        "runs on server eu-2, and database eudb lives on server eu-1: an overlay network "
        "does not span swarms, so the app could not resolve the database's address."
    )
    assert result(await say(bot, "db attach eudb blog", ADMIN)).ok  # not deployed yet
    at_deploy = await refused(bot, swarms, "deploy blog")
    assert at_deploy.startswith(f"blog (production) {reason}"), at_deploy
    assert at_deploy.endswith("nothing was changed")
    at_attach = await refused(bot, swarms, "db attach eudb wiki")
    assert at_attach.startswith(f"wiki (production) {reason}"), at_attach


async def test_server_remove_of_a_swarm_others_joined_through_it(fleet):
    bot, swarms = fleet
    assert await refused(bot, swarms, "server remove eu-1") == (
        "eu-3 joined eu-1's swarm through it, and what runs there is served by eu-1's proxy: "
        "`server remove eu-3` first; nothing was changed"
    )


async def test_server_remove_of_a_server_holding_a_database(fleet):
    bot, swarms = fleet
    assert result(await say(bot, "db create postgres bdb --server eu-2", ADMIN)).ok
    assert result(await say(bot, "apps remove wiki", ADMIN)).ok  # nothing runs on eu-2 now
    assert await refused(bot, swarms, "server remove eu-2") == (
        "databases bdb live on eu-2: back them up and remove them (`backup run bdb`, then "
        "`db remove bdb`) first; nothing was changed"
    )


async def test_server_remove_of_a_server_apps_run_on(fleet):
    bot, swarms = fleet
    assert await refused(bot, swarms, "server remove eu-2") == (
        "wiki (production) run on eu-2: deploy them elsewhere (app.yml's server:) or remove "
        "them (`apps remove APP --env ENV`) first; nothing was changed"
    )
