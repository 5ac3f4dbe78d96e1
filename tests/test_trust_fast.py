"""Trust items that need no real engine: the real dispatcher and store on the fake swarm."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from commands.dispatch import ChatRequest
from commands.replies import USAGE, Index, Log, Message, Result, Step
from core.swarm.testing.orchestrator import UNHEALTHY
from tests.chat import failure, result, say, table
from tests.fast_plane import dispatcher, fake_swarm

ADMIN = "console:root"
APP_YML = """\
name: shop
image: shop:1
replicas: 2
environments:
  production: {replicas: 2}
  staging: {replicas: 1}
"""


@pytest.fixture
def plane(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    folder = tmp_path / "shop"
    folder.mkdir()
    (folder / "app.yml").write_text(APP_YML)
    swarm = fake_swarm("shop:1")
    bot = dispatcher(home, swarm, [ADMIN])
    yield bot, swarm, folder
    bot.close()


async def test_a_reply_that_fails_after_the_outcome_does_not_rewrite_it(plane):
    bot, _, folder = plane
    assert result(await say(bot, f"apps add shop --path {folder}", ADMIN)).ok
    replies = bot.handle(ChatRequest("console", ADMIN, "console", "deploy shop"))
    with pytest.raises(RuntimeError):
        async for reply in replies:
            if isinstance(reply, Result):
                raise RuntimeError("the chat went away")  # the channel post failed
    await replies.aclose()
    (release,) = bot.engine.store.releases("shop", "production")
    assert release.status == "live"


async def test_a_deploy_cut_off_mid_rollout_is_read_back_from_swarm(plane):
    bot, _, folder = plane
    assert result(await say(bot, f"apps add shop --path {folder}", ADMIN)).ok
    replies = bot.handle(ChatRequest("console", ADMIN, "console", "deploy shop"))
    async for reply in replies:
        if isinstance(reply, Step) and "tasks up" in reply.text:
            break  # the chat stopped reading once the spec was with Swarm
    await replies.aclose()
    # closing the reader closed the deploy: not failed, not live, but unknown; and unlocked
    (release,) = bot.engine.store.releases("shop", "production")
    assert release.status == "unknown"
    assert bot.engine.store.db["locks"].count == 0
    (row,) = bot.engine.store.db["deployments"].rows
    assert row["status"] == "interrupted"
    # Swarm finished the rollout by itself: reading releases records that
    listed = table(await say(bot, "releases shop", ADMIN))
    assert listed.rows[0][:2] == ("1", "live")


async def test_logs_show_the_live_release_unless_asked(plane):
    bot, swarm, folder = plane
    swarm.publish("shop:2", UNHEALTHY)
    assert result(await say(bot, f"apps add shop --path {folder}", ADMIN)).ok
    assert result(await say(bot, "deploy shop", ADMIN)).ok
    assert not result(await say(bot, "deploy shop 2", ADMIN)).ok  # rolled back by Swarm

    def lines(replies: list) -> set[str]:
        return {r.text for r in replies if isinstance(r, Log)}

    assert lines(await say(bot, "logs shop", ADMIN)) == {"listening on :8080"}
    assert lines(await say(bot, "logs shop --release 2", ADMIN)) == {"listening on :9999"}
    assert lines(await say(bot, "logs shop --all", ADMIN)) == {
        "listening on :8080",
        "listening on :9999",
    }


async def test_status_lists_only_this_control_planes_apps(plane):
    bot, swarm, folder = plane
    assert result(await say(bot, f"apps add shop --path {folder}", ADMIN)).ok
    assert result(await say(bot, "deploy shop", ADMIN)).ok
    swarm.add_image("other:1")
    swarm.create_service(
        {
            "Name": "other-production",
            "Labels": {"shipbot.app": "other", "shipbot.env": "production"},
            "TaskTemplate": {"ContainerSpec": {"Image": "other:1"}, "ForceUpdate": 0},
            "Mode": {"Replicated": {"Replicas": 1}},
            "UpdateConfig": {},
            "RollbackConfig": {},
            "EndpointSpec": {"Mode": "dnsrr"},
        }
    )
    shown = table(await say(bot, "status", ADMIN))
    assert [row[0] for row in shown.rows] == ["shop"]


async def test_outbox_dead_letters_for_admins(plane):
    bot, _, _ = plane
    store = bot.engine.store
    message_id = store.enqueue(platform="slack", channel="C1", kind="alerts", payload="{}")
    statuses = [store.mark_retry(message_id, "channel_not_found", 0) for _ in range(8)]
    assert statuses[-1] == "dead" and "dead" not in statuses[:-1]
    shown = await say(bot, "outbox", ADMIN)
    assert shown[0].text == "outbox: 1 dead, 0 pending, 0 sent"
    dead = table(shown)
    assert dead.rows[0][:4] == (str(message_id), "slack:C1", "alerts", "8")
    assert result(await say(bot, f"outbox retry {message_id}", ADMIN)).ok
    assert store.outbox_counts()["pending"] == 1
    assert failure(await say(bot, "outbox", "console:nobody")).kind == "denied"


async def test_did_you_mean_help_and_environments_once(plane):
    bot, _, folder = plane
    added = result(await say(bot, f"apps add shop --path {folder}", ADMIN))
    assert added.details == (
        "environments: production, staging",
        "no domains: reachable only inside the swarm network",
    )
    typo = failure(await say(bot, "deplyo shop", ADMIN))
    assert typo.kind == USAGE and "(did you mean deploy?)" in typo.message
    flag = failure(await say(bot, "deploy shop --dryrun", ADMIN))
    assert "unknown option --dryrun (did you mean --dry-run?)" in flag.message
    app = failure(await say(bot, "deploy shpo", ADMIN))
    assert app.message.startswith("no app named 'shpo' (registered: shop) (did you mean 'shop'?)")
    helped = await say(bot, "help", ADMIN)
    assert isinstance(helped[0], Index)
    assert "act on production when it is not given" in helped[0].note
    usage = await say(bot, "help scale", ADMIN)
    assert "--env defaults to production." in usage[0].text


async def test_a_locked_state_file_answers_in_seconds_and_loses_no_audit(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    folder = tmp_path / "shop"
    folder.mkdir()
    (folder / "app.yml").write_text(APP_YML)
    swarm = fake_swarm("shop:1")
    bot = dispatcher(home, swarm, [ADMIN], busy_timeout=0.5)
    assert result(await say(bot, f"apps add shop --path {folder}", ADMIN)).ok
    other = sqlite3.connect(home / "shipbot.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another shipbot process holds the write lock
    try:
        busy = failure(await say(bot, "env set shop COLOR=blue --env staging", ADMIN))
        assert "is locked by another shipbot process" in busy.message
        assert "try again in a moment" in busy.message
        # reading goes on while the row waits (the file is WAL): no crash, no stall
        assert table(await say(bot, "apps list", ADMIN)).rows[0][0] == "shop"
    finally:
        other.execute("ROLLBACK")
        other.close()
    rows = bot.engine.store.audit_log("shop")
    assert (rows[0]["command"], rows[0]["result"]) == (
        "env set shop COLOR=blue --env staging",
        "failed",
    )
    assert bot.engine.store.variables("shop") == []
    bot.close()


async def test_an_environment_name_cannot_reach_into_another_apps_names(tmp_path, plane):
    bot, swarm, folder = plane
    longer = tmp_path / "shop-v2"
    longer.mkdir()
    (longer / "app.yml").write_text("name: shop-v2\nimage: shop:1\n")
    (folder / "app.yml").write_text(
        APP_YML
        + "  v2-production: {replicas: 1}\n"
        + "  v2: {volumes: ['production-data:/data']}\n"
    )
    assert result(await say(bot, f"apps add shop --path {folder}", ADMIN)).ok
    assert result(await say(bot, f"apps add shop-v2 --path {longer}", ADMIN)).ok
    assert result(await say(bot, "grant console:mal deployer --app shop", ADMIN)).ok
    for text, name in (
        ("deploy shop --env v2-production", "shop-v2-production"),  # shop-v2's service
        ("deploy shop --env v2 --dry-run", "shop-v2-production-data"),  # and its volume
    ):
        refused = failure(await say(bot, text, "console:mal"))
        assert f"would make {name!r}, which is app 'shop-v2''s name space" in refused.message
    assert swarm.services() == []
    # the shorter name's own environments are fine
    assert result(await say(bot, "deploy shop --env staging", "console:mal")).ok


async def test_a_service_shipbot_did_not_make_for_the_app_is_left_alone(plane):
    bot, swarm, folder = plane
    assert result(await say(bot, f"apps add shop --path {folder}", ADMIN)).ok
    swarm.create_service(
        {
            "Name": "shop-production",
            "Labels": {"team": "someone else's"},
            "TaskTemplate": {"ContainerSpec": {"Image": "shop:1"}, "ForceUpdate": 0},
            "Mode": {"Replicated": {"Replicas": 1}},
            "UpdateConfig": {},
            "RollbackConfig": {},
            "EndpointSpec": {"Mode": "dnsrr"},
        }
    )
    before = swarm.inspect_service("shop-production")["Version"]
    for text in ("deploy shop", "deploy shop --dry-run"):
        refused = failure(await say(bot, text, ADMIN))
        assert refused.message == (
            "service shop-production belongs to no shipbot app, not shop (production); "
            "nothing was changed"
        )
    assert swarm.inspect_service("shop-production")["Version"] == before
    assert bot.engine.store.releases("shop") == []


async def test_an_app_cannot_run_another_apps_release_image(plane):
    bot, swarm, folder = plane
    swarm.add_image("shipbot/billing:3")
    (folder / "app.yml").write_text(APP_YML.replace("image: shop:1", "image: shipbot/billing:3"))
    assert result(await say(bot, f"apps add shop --path {folder}", ADMIN)).ok
    for text in ("deploy shop", "deploy shop --dry-run", "deploy shop 3"):
        refused = failure(await say(bot, text, ADMIN))
        assert "is a shipbot release image" in refused.message, text
    assert swarm.services() == []


async def test_a_domain_routed_to_one_app_cannot_be_claimed_by_another(tmp_path, plane):
    bot, swarm, folder = plane
    (folder / "app.yml").write_text(APP_YML + "port: 8080\ndomains: [shop.example.com]\n")
    other = tmp_path / "evil"
    other.mkdir()
    (other / "app.yml").write_text(
        "name: evil\nimage: shop:1\nport: 8080\ndomains: [shop.example.com]\npath_prefix: /login\n"
    )
    assert result(await say(bot, f"apps add shop --path {folder}", ADMIN)).ok
    assert result(await say(bot, f"apps add evil --path {other}", ADMIN)).ok
    assert result(await say(bot, "domain grant shop shop.example.com", ADMIN)).ok
    assert result(await say(bot, "deploy shop", ADMIN)).ok
    assert result(await say(bot, "grant console:mal deployer --app evil", ADMIN)).ok
    for text in ("deploy evil", "deploy evil --dry-run"):
        refused = failure(await say(bot, text, "console:mal"))
        assert refused.message.startswith(
            "shop.example.com is granted to app shop: one name routes one app."
        )
    assert swarm.inspect_service("evil-production") is None
    # the same app in another environment is another owner too
    assert "already routed to shop (production)" in (
        failure(await say(bot, "deploy shop --env staging", ADMIN)).message
    )
    # its own environment deploys again
    assert result(await say(bot, "deploy shop", ADMIN)).ok


async def test_a_wildcard_domain_needs_a_dns_01_resolver(tmp_path, plane):
    bot, swarm, folder = plane
    (folder / "app.yml").write_text(APP_YML + "port: 8080\ndomains: ['*.shop.example']\n")
    assert result(await say(bot, f"apps add shop --path {folder}", ADMIN)).ok
    assert result(await say(bot, "domain grant shop '*.shop.example'", ADMIN)).ok
    refused = failure(await say(bot, "deploy shop --dry-run", ADMIN))
    assert refused.message.startswith("shop: *.shop.example needs a DNS-01 certificate")
    assert swarm.services() == []


@pytest.mark.parametrize(
    "text",
    [
        "backup run maindb",
        "backup verify maindb",
        "backup list maindb",
        "restore maindb 1",
        "backup accept maindb 1",
    ],
)
async def test_a_grant_on_an_app_named_like_a_database_does_not_cover_the_database(plane, text):
    bot, _, _ = plane
    # an app called maindb, and a deployer of it: the database maindb is not theirs
    assert result(await say(bot, "grant console:mal deployer --app maindb", ADMIN)).ok
    refused = failure(await say(bot, text, "console:mal"))
    if text.startswith("backup list"):  # reading: the same answer as for no such database
        assert refused.message.startswith("no database 'maindb': `db list` shows the ones")
    else:
        assert refused.kind == "denied", refused


async def test_releases_of_an_environment_app_yml_does_not_declare_says_so(plane):
    bot, _, folder = plane
    assert result(await say(bot, f"apps add shop --path {folder}", ADMIN)).ok
    typo = failure(await say(bot, "releases shop --env prod", ADMIN))
    assert typo.message == ("shop has no environment 'prod': app.yml declares production, staging")
    empty = await say(bot, "releases shop --env staging", ADMIN)
    assert empty == [Message("shop has no releases in staging yet: `deploy shop --env staging`")]
    assert await say(bot, "releases shop", ADMIN) == [
        Message("shop has no releases in production yet: `deploy shop`")
    ]
