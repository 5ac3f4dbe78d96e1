"""`apps remove` through the dispatcher on the fake swarm: one environment or the whole
app, approval where an environment asks for one, admins only, volumes kept unless asked,
another control plane's objects never touched."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from commands.replies import DENIED, ApprovalRequest, Failure, Result
from core.config import DnsConfig
from core.names import LABEL_APP, LABEL_ENV, LABEL_PLANE
from core.store import App
from tests.chat import failure, result, say
from tests.fake_cloudflare import FakeCloudflare
from tests.fast_plane import dispatcher, fake_swarm, register

ADMIN, ANN, DEE = "console:root", "console:ann", "console:dee"
APP_YML = """\
name: web
image: web:1
port: 8080
approval: true
volumes: ["data:/data"]
environments:
  staging: {approval: false}
"""


@pytest.fixture
async def plane(tmp_path: Path):
    swarm = fake_swarm("web:1", "other:1")
    home = tmp_path / "home"
    home.mkdir()
    folder = tmp_path / "web"
    folder.mkdir()
    (folder / "app.yml").write_text(APP_YML)
    bot = dispatcher(home, swarm, [ADMIN])
    register(bot.engine.store, App("web", "path", str(folder), None, ADMIN, time.time()))
    for text in (f"grant {ANN} admin", f"grant {DEE} deployer --app web"):
        assert result(await say(bot, text, ADMIN)).ok
    yield bot, swarm
    bot.close()


async def approved(bot, text: str, user: str = ADMIN, approver: str = ANN) -> Result:
    asked = await say(bot, text, user)
    assert isinstance(asked[-1], ApprovalRequest), asked
    return result(await say(bot, f"approve {asked[-1].id}", approver))


async def deployed(bot) -> None:
    assert (await approved(bot, "deploy web")).ok
    assert result(await say(bot, "deploy web --env staging", DEE)).ok
    assert result(await say(bot, "env set web GREETING=hi --env staging", DEE)).ok


def audit(bot) -> list[tuple[str, str, str]]:
    rows = bot.engine.store.audit_log(limit=100)
    return [(r["user"], r["command"], r["result"]) for r in rows]


async def test_one_environment_goes_and_the_registration_and_its_volume_stay(plane):
    bot, swarm = plane
    await deployed(bot)
    staging_images = {r.image for r in bot.engine.store.releases("web", "staging")}
    assert staging_images and all(swarm.image_id(i) for i in staging_images)
    volume = next(v for v in swarm.volumes if "staging" in v)

    done = result(await say(bot, "apps remove web --env staging", ADMIN))  # no approval asked
    assert done.ok and done.title == "web (staging) removed; the app stays registered"
    assert swarm.inspect_service("web-staging") is None
    assert swarm.inspect_network("shipbot-web-staging") is None
    assert not any(swarm.image_id(i) for i in staging_images)
    assert "removed service web-staging" in done.details
    assert "removed network shipbot-web-staging" in done.details
    assert (
        f"kept volume {volume} (its data: `docker volume rm {volume}`, or run again with "
        "--delete-volumes)" in done.details
    )
    assert swarm.inspect_volume(volume) is not None
    # production runs on, and the app, its variables and grants stay
    assert swarm.inspect_service("web-production") is not None
    assert [a.name for a in bot.engine.store.list_apps()] == ["web"]
    assert bot.engine.store.releases("web", "staging") == []
    assert bot.engine.store.releases("web", "production") != []
    assert "GREETING" in {v["key"] for v in bot.engine.store.variables("web", "staging")}
    assert (ADMIN, "apps remove web --env staging", "ok") in audit(bot)


async def test_the_whole_app_needs_someone_elses_approval_and_unregisters_it(plane):
    bot, swarm = plane
    await deployed(bot)
    asked = await say(bot, "apps remove web", ADMIN)
    assert isinstance(asked[-1], ApprovalRequest), asked
    assert asked[-1].details == (
        "web: production, staging undeployed and unregistered",
        "named volumes kept",
    )
    assert swarm.inspect_service("web-production") is not None  # nothing yet
    own = failure(await say(bot, f"approve {asked[-1].id}", ADMIN))
    assert "someone else must approve it" in own.message

    done = result(await say(bot, f"approve {asked[-1].id}", ANN))
    assert done.ok and done.title == "web removed and unregistered"
    assert swarm.services("web") == []
    assert [n for n in swarm.networks if "web" in n] == []
    assert sorted(v for v in swarm.volumes if v.startswith("web-")) == sorted(
        d.split()[2] for d in done.details if d.startswith("kept volume")
    )
    store = bot.engine.store
    assert store.list_apps() == [] and store.releases("web") == []
    assert store.variables("web", "staging") == [] and store.accepted_policy("web") is None
    assert [g for g in store.grants() if g["app"] == "web"] == []  # DEE's grant named only web
    assert [g["user"] for g in store.grants()] == [ANN]  # a grant on every app stays
    rows = audit(bot)
    assert rows[:3] == [
        (ANN, f"approve {asked[-1].id}", "ok"),  # the run's own row, as a deploy's
        (ADMIN, f"approve {asked[-1].id}", DENIED),
        (ADMIN, "apps remove web", "pending"),
    ]
    assert (DEE, "deploy web --env staging", "ok") in rows  # the history stays

    unknown = failure(await say(bot, "apps remove web", ADMIN))
    assert unknown.message.startswith("no app named 'web'")


async def test_delete_volumes_removes_them_and_break_glass_skips_the_approval(plane):
    bot, swarm = plane
    await deployed(bot)
    replies = await say(bot, 'apps remove web --delete-volumes --break-glass "demo over"', ANN)
    done = result(replies)
    assert done.ok
    assert [v for v in swarm.volumes if v.startswith("web-")] == []
    assert [d for d in done.details if d.startswith("removed volume web-")] != []
    assert not [d for d in done.details if d.startswith("kept volume")]
    row = bot.engine.store.audit_log(limit=1)[0]
    assert row["result"] == "ok" and row["detail"].startswith("break glass (demo over)")


async def test_only_an_admin_may_remove_even_one_environment(plane):
    bot, swarm = plane
    await deployed(bot)
    denied = failure(await say(bot, "apps remove web --env staging", DEE))
    assert denied.kind == DENIED
    assert swarm.inspect_service("web-staging") is not None
    glass = await say(bot, 'apps remove web --env staging --break-glass "x"', DEE)
    assert failure(glass).kind == DENIED
    assert (DEE, "apps remove web --env staging", DENIED) in audit(bot)


async def test_another_control_planes_service_network_and_volume_are_untouched(plane):
    bot, swarm = plane
    theirs = {LABEL_APP: "web", LABEL_ENV: "staging", LABEL_PLANE: "other-plane"}
    swarm.ensure_network("shipbot-web-staging", theirs)
    mount = {
        "Type": "volume",
        "Source": "web-staging-data",
        "Target": "/data",
        "VolumeOptions": {"Labels": {LABEL_PLANE: "other-plane"}},
    }
    swarm.create_service(
        {
            "Name": "web-staging",
            "Labels": theirs,
            "Mode": {"Replicated": {"Replicas": 1}},
            "TaskTemplate": {
                "ContainerSpec": {"Image": "other:1", "Mounts": [mount]},
                "Networks": [{"Target": "shipbot-web-staging"}],
            },
        }
    )
    done = result(await say(bot, "apps remove web --env staging --delete-volumes", ADMIN))
    assert done.ok
    assert "kept service web-staging (control plane other-plane's: not touched)" in done.details
    assert swarm.inspect_service("web-staging") is not None
    assert swarm.inspect_network("shipbot-web-staging") is not None
    assert swarm.inspect_volume("web-staging-data") is not None
    assert not [d for d in done.details if d.startswith("removed ")]


async def test_unknown_app_and_environment_say_so_and_change_nothing(plane):
    bot, swarm = plane
    await deployed(bot)
    before = len(swarm.calls)
    app = failure(await say(bot, "apps remove nosuch", ADMIN))
    assert app.message.startswith("no app named 'nosuch' (registered: web)")
    env = failure(await say(bot, "apps remove web --env prod", ADMIN))
    assert env.message == (
        "web has no environment 'prod' (its environments: production, staging); nothing was changed"
    )
    assert not [c for c in swarm.calls[before:] if c.startswith("remove")]
    assert isinstance(env, Failure)


async def test_one_environment_in_production_asks_for_approval_first(plane):
    bot, swarm = plane
    await deployed(bot)
    asked = await say(bot, "apps remove web --env production", ADMIN)
    assert isinstance(asked[-1], ApprovalRequest), asked
    assert asked[-1].details == (
        "web: production undeployed (the app stays registered)",
        "named volumes kept",
    )
    assert swarm.inspect_service("web-production") is not None
    done = result(await say(bot, f"approve {asked[-1].id}", ANN))
    assert done.title == "web (production) removed; the app stays registered"
    assert swarm.inspect_service("web-production") is None
    assert swarm.inspect_service("web-staging") is not None


async def test_the_dns_records_its_sync_made_go_and_no_others(plane, monkeypatch):
    bot, swarm = plane
    await deployed(bot)
    cloudflare = await FakeCloudflare(
        zones={"web.test": "0a1b2c3d4e5f"}, tokens={"cf-token": {"web.test"}}
    ).start()
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "cf-token")
    dns = DnsConfig(zone="web.test", addresses=["203.0.113.10"], api_url=cloudflare.base_url)
    bot.config = bot.config.model_copy(update={"dns": dns})
    record = {"type": "A", "content": "203.0.113.10"}
    cloudflare.add(
        "web.test", name="s.web.test", comment="managed by shipbot: web/staging", **record
    )
    cloudflare.add(
        "web.test", name="web.test", comment="managed by shipbot: web/production", **record
    )
    cloudflare.add("web.test", name="mail.web.test", **record)  # a person's
    try:
        done = result(await say(bot, "apps remove web --env staging", ADMIN))
        assert "removed DNS record A s.web.test → 203.0.113.10" in done.details
        assert cloudflare.of("s.web.test") == []
        assert [r["comment"] for r in cloudflare.of("web.test")] == [
            "managed by shipbot: web/production"
        ]
        assert len(cloudflare.of("mail.web.test")) == 1
    finally:
        await cloudflare.stop()
