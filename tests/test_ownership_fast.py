"""Two control planes (two SHIPBOT_HOMEs) on one swarm, each with an app named web: neither
lists, drifts on, alerts on or reads the certificates of the other's service."""

from __future__ import annotations

import json
from pathlib import Path

from commands.dispatch import Dispatcher
from commands.replies import Table
from commands.watching import watchers
from core.config import AlertsConfig, ControlConfig, NotifyRoute
from core.deploy.drift import detect
from core.engine import Engine
from core.names import LABEL_PLANE
from core.secrets import Vault
from core.store import Store
from core.swarm.servers import Servers
from core.swarm.testing import HEALTHY, UNHEALTHY, FakeSwarm
from core.watch.certs import EdgeReader
from tests.chat import failure, result, say
from tests.clock import SwarmSteps
from tests.fake_plane import WEB, fast_swarm

ADMIN = "console:alice"
ALERTS = AlertsConfig(crash_restarts=3, crash_window_seconds=120, usage_image=None, guard_seconds=0)
ROUTED = WEB + "port: 8080\ndomains: [web.test]\nhttps: false\n"


async def plane_of(root: Path, name: str, swarm: FakeSwarm) -> Dispatcher:
    home, folder = root / name, root / f"{name}-web"
    home.mkdir()
    folder.mkdir()
    (folder / "app.yml").write_text(ROUTED)
    engine = Engine(
        Store(home / "shipbot.db"),
        servers=Servers({"local": lambda: swarm}),
        home=home,
        vault=Vault.open(home),
        clock=SwarmSteps(swarm),
    )
    route = NotifyRoute(platform="slack", channel=f"C{name.upper()}", kinds=["alerts"])
    bot = Dispatcher(engine, ControlConfig(admins=[ADMIN], notify=[route], alerts=ALERTS))
    assert result(await say(bot, f"apps add web --path {folder}", ADMIN)).ok
    assert result(await say(bot, "domain grant web web.test", ADMIN)).ok
    return bot


def alerts_posted(bot: Dispatcher) -> list[str]:
    rows = bot.engine.store._rows("outbox", "kind = 'alerts'", order_by="id")
    return [json.loads(r["payload"])["fields"]["title"] for r in rows]


async def test_two_control_planes_on_one_swarm_never_touch_each_others_services(tmp_path):
    swarm = fast_swarm()
    one, two = await plane_of(tmp_path, "one", swarm), await plane_of(tmp_path, "two", swarm)
    try:
        assert one.engine.plane.id != two.engine.plane.id
        assert result(await say(one, "deploy web 1", ADMIN)).ok
        service = swarm.inspect_service("web-production")
        assert service["Spec"]["Labels"][LABEL_PLANE] == one.engine.plane.id
        version = service["Version"]["Index"]

        # the other control plane's app of the same name has no release there to change
        for verb in ("scale web 3", "restart web", "rollback web"):
            failure(await say(two, verb, ADMIN))
        assert swarm.inspect_service("web-production")["Version"]["Index"] == version

        # nor lists it, nor finds it drifted (it has no release there: an orphan, once)
        listed = [r for r in await say(two, "status", ADMIN) if isinstance(r, Table)]
        assert all(row[0] != "web" for t in listed for row in t.rows), listed
        assert await detect(two.engine.plane) == []
        assert [r.app for r in await one.engine.status()] == ["web"]

        # nor reads its certificates
        assert await EdgeReader.of(two.engine.plane).facts() == []

        # nor alerts on its crash loop: only its own control plane does
        watches = [watchers(b.engine.plane, b.config, b.notifier)[0] for b in (one, two)]
        swarm.behave("web:1", UNHEALTHY)
        for _ in range(40):
            swarm.step()
            for watch in watches:
                await watch.check()
        swarm.behave("web:1", HEALTHY)
        assert [t[:34] for t in alerts_posted(one)] == ["🔁 web (production) on local is cra"]
        assert alerts_posted(two) == []
    finally:
        one.close()
        two.close()
