"""Databases are attached per app *and environment* (issue 20, item 6): production's
attachment does not reach staging because a push lists the database under `staging:`; only
an admin of every app and environment attaches it there. Through the real dispatcher on the
fake swarm, and migration v17 on a store made before it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from commands.dispatch import Dispatcher
from core.config import ControlConfig
from core.data import databases
from core.engine import Engine
from core.secrets import Vault
from core.store import Store
from core.store.migrations import HISTORY
from core.store.schema.data import v17_env_attachments
from core.swarm.servers import Servers
from core.swarm.testing import FakeSwarm
from tests import test_databases
from tests.chat import failure, result, say
from tests.clock import SwarmSteps
from tests.fast_plane import fake_swarm
from tests.test_databases import ADMIN, APP_YML
from tests.test_store import old_format_db

plane = test_databases.plane  # the same fixture: the fake swarm, apps shop and blog


async def test_each_environment_is_attached_apart(plane):
    """Issue 20, item 6: production's attachment does not reach staging because a push
    lists the database under staging; only an admin of everything attaches it there."""
    bot, swarm, folder = plane
    (folder / "shop" / "app.yml").write_text(APP_YML + "environments:\n  staging: {}\n")
    assert result(await say(bot, "db create postgres maindb", ADMIN)).ok
    assert result(await say(bot, f"apps add shop --path {folder / 'shop'}", ADMIN)).ok
    attached = result(await say(bot, "db attach maindb shop", ADMIN))
    assert attached.title == "database maindb attached to shop (production)"
    for grant in (
        "console:dev deployer --app shop --env staging",
        "console:ops admin --env staging",
    ):
        assert result(await say(bot, f"grant {grant}", ADMIN)).ok
    refused = failure(await say(bot, "deploy shop --env staging", "console:dev"))
    assert refused.message == (
        "shop's app.yml names database 'maindb' in staging, which is not attached to shop "
        "(staging): an admin runs `db attach maindb shop --env staging`; nothing was changed"
    )
    assert swarm.inspect_service("shop-staging") is None
    # an admin of every app in staging alone may not hand staging a database either
    for verb in ("attach", "detach"):
        denied = failure(await say(bot, f"db {verb} maindb shop --env staging", "console:ops"))
        assert denied.message == (
            "console:ops may not attach or detach databases: that needs the admin role on "
            "every app and environment. An admin of everything runs it; nothing was changed"
        )
    assert bot.engine.store.database_attachments("maindb") == [("shop", "production")]
    assert databases.attached(bot.engine.plane, "maindb") == [("shop", "production")]
    attached = result(await say(bot, "db attach maindb shop --env staging", ADMIN))
    assert attached.details == (
        "add `databases: [maindb]` to its app.yml for staging, then `deploy shop --env staging`",
    )
    audit = [(r["command"], r["env"], r["result"]) for r in bot.engine.store.db["audit"].rows]
    assert ("db attach maindb shop --env staging", "staging", "ok") in audit
    assert result(await say(bot, "deploy shop --env staging", "console:dev")).ok
    db = await bot.engine.database("maindb")
    spec = swarm.inspect_service("shop-staging")["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert f"DATABASE_URL={db.url}" in spec["Env"]
    assert result(await say(bot, "db detach maindb shop --env staging", ADMIN)).ok
    assert bot.engine.store.database_attachments("maindb") == [("shop", "production")]
    again = failure(await say(bot, "deploy shop --env staging", "console:dev"))
    assert again.message == refused.message


def test_attachments_made_per_app_become_production_ones(tmp_path: Path):
    path = tmp_path / "s.db"
    old_format_db(path, HISTORY.index(v17_env_attachments))
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO database_apps (database, app, attached_by, attached_at) "
            "VALUES ('maindb', 'a', 'console:x', 5.0)"
        )
    conn.close()
    store = Store(path)
    assert store.database_attachments("maindb") == [("a", "production")]
    (row,) = store.db["database_attachments"].rows
    assert (row["attached_by"], row["attached_at"]) == ("console:x", 5.0)
    assert not store.db["database_apps"].exists()
    store.close()


async def test_a_database_on_another_swarm_is_refused_at_deploy_and_attach(
    tmp_path: Path, monkeypatch
):
    """A database lives on the control plane's server; an app environment on a remote
    server cannot resolve it (an overlay network does not span swarms): its deploy and a
    later attach are refused with that reason, and nothing runs."""
    local = fake_swarm("shop:1", "blog:1", "postgres:16")
    eu = FakeSwarm()
    for ref in ("shop:1", "blog:1"):
        eu.publish(ref)
    home = tmp_path / "home"
    home.mkdir()
    for app, listed in (("shop", "databases: [maindb]\n"), ("blog", "")):
        (tmp_path / app).mkdir()
        (tmp_path / app / "app.yml").write_text(
            f"name: {app}\nimage: {app}:1\n{listed}environments:\n  production: {{server: eu-1}}\n"
        )
    engine = Engine(
        Store(home / "shipbot.db"),
        servers=Servers({"local": lambda: local, "eu-1": lambda: eu}),
        home=home,
        vault=Vault.open(home),
        server_apps={"eu-1": ["shop", "blog"]},
        clock=SwarmSteps(local, eu),
    )
    bot = Dispatcher(engine, ControlConfig(admins=[ADMIN]))
    try:
        assert result(await say(bot, "db create postgres maindb", ADMIN)).ok
        for app in ("shop", "blog"):
            assert result(await say(bot, f"apps add {app} --path {tmp_path / app}", ADMIN)).ok
        assert result(await say(bot, "db attach maindb shop", ADMIN)).ok  # not deployed yet
        reason = (
            "runs on server eu-1, and database maindb lives on server local: an overlay "
            "network does not span swarms, so the app could not resolve the database's "
            "address."
        )
        refused = failure(await say(bot, "deploy shop", ADMIN))
        assert refused.message.startswith(f"shop (production) {reason}"), refused.message
        assert refused.message.endswith("nothing was changed")
        assert eu.services() == [] and engine.store.releases("shop", "production") == []

        assert result(await say(bot, "deploy blog", ADMIN)).ok
        late = failure(await say(bot, "db attach maindb blog", ADMIN))
        assert late.message.startswith(f"blog (production) {reason}"), late.message
        assert engine.store.database_attachments("maindb") == [("shop", "production")]
    finally:
        bot.close()
