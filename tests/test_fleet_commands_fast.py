"""`run`, release commands and `logs` follow the app environment's server (issue 23): with
production on eu-1 and staging on eu-2, each command's work goes to its environment's
server's engine and nothing at all to the other's, nor to the control plane's own. Three
fake swarms through the real dispatcher; each engine records every call made to it."""

from __future__ import annotations

from pathlib import Path

import pytest

from commands.dispatch import Dispatcher
from core.config import ControlConfig
from core.engine import Engine
from core.secrets import Vault
from core.store import Store
from core.swarm.servers import Servers
from core.swarm.testing import Behaviour, FakeSwarm
from tests.chat import logs, result, say
from tests.clock import SwarmSteps

ADMIN = "console:root"
APP_YML = """\
name: shop
image: shop:1
release: [migrate, --all]
environments:
  production: {server: eu-1}
  staging: {server: eu-2}
"""
SERVERS = ("local", "eu-1", "eu-2")


def swarm_of(name: str) -> FakeSwarm:
    """A swarm whose shop:1 logs its server's name, so a log line tells where it came from."""
    swarm = FakeSwarm()
    swarm.publish("shop:1", Behaviour(log=(f"serving on {name}",)))
    swarm.job_handler = lambda argv, env: (0, [f"{' '.join(argv)} ran on {name}"])
    return swarm


@pytest.fixture
async def fleet(tmp_path: Path):
    swarms = {name: swarm_of(name) for name in SERVERS}
    home = tmp_path / "home"
    home.mkdir()
    engine = Engine(
        Store(home / "shipbot.db"),
        servers=Servers({name: (lambda s=s: s) for name, s in swarms.items()}),
        home=home,
        vault=Vault.open(home),
        server_apps={"eu-1": ["shop"], "eu-2": ["shop"]},
        clock=SwarmSteps(*swarms.values()),
    )
    bot = Dispatcher(engine, ControlConfig(admins=[ADMIN]))
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "app.yml").write_text(APP_YML)
    assert result(await say(bot, f"apps add shop --path {tmp_path / 'shop'}", ADMIN)).ok
    yield bot, swarms
    bot.close()


class Calls:
    """What each engine is asked from now on."""

    def __init__(self, swarms: dict[str, FakeSwarm]) -> None:
        self.swarms = swarms
        self.start = {name: len(s.calls) for name, s in swarms.items()}

    def of(self, name: str) -> list[str]:
        return self.swarms[name].calls[self.start[name] :]


async def test_the_release_command_runs_on_its_environments_server_only(fleet):
    bot, swarms = fleet
    calls = Calls(swarms)
    done = result(await say(bot, "deploy shop", ADMIN))
    assert done.ok and done.title == "shop release 1 is live on production", done
    assert [(n, argv) for n, argv, _ in swarms["eu-1"].jobs] == [
        ("shop-production_release-1", ("migrate", "--all"))
    ]
    assert swarms["eu-1"].inspect_service("shop-production") is not None
    assert calls.of("eu-2") == [] and calls.of("local") == []
    calls = Calls(swarms)
    staged = await say(bot, "deploy shop --env staging", ADMIN)
    assert result(staged).ok
    assert "migrate --all ran on eu-2" in logs(staged)
    assert [n for n, _, _ in swarms["eu-2"].jobs] == ["shop-staging_release-2"]
    assert calls.of("eu-1") == [] and calls.of("local") == []
    assert len(swarms["eu-1"].jobs) == 1 and swarms["local"].jobs == []


async def test_run_goes_to_the_live_releases_server_only(fleet):
    bot, swarms = fleet
    assert result(await say(bot, "deploy shop", ADMIN)).ok
    assert result(await say(bot, "deploy shop --env staging", ADMIN)).ok
    for env, server, other in (("production", "eu-1", "eu-2"), ("staging", "eu-2", "eu-1")):
        calls = Calls(swarms)
        replies = await say(bot, f"run shop --env {env} -- whoami", ADMIN)
        assert result(replies).ok, replies
        assert logs(replies) == [f"whoami ran on {server}"]
        (name, argv, _) = swarms[server].jobs[-1]
        assert name.startswith(f"shop-{env}_run-") and argv == ("whoami",)
        assert "create_service" in calls.of(server)
        assert calls.of(other) == [] and calls.of("local") == []


async def test_logs_read_the_environments_server_only(fleet):
    bot, swarms = fleet
    assert result(await say(bot, "deploy shop", ADMIN)).ok
    assert result(await say(bot, "deploy shop --env staging", ADMIN)).ok
    for env, server, other in (("production", "eu-1", "eu-2"), ("staging", "eu-2", "eu-1")):
        calls = Calls(swarms)
        lines = logs(await say(bot, f"logs shop --env {env}", ADMIN))
        assert lines and all(line.endswith(f"serving on {server}") for line in lines), lines
        assert calls.of(server) and calls.of(other) == [] and calls.of("local") == []
