"""The guard after a deploy, on the in-memory swarm and the real chat path: a release that
crash-loops after going live is rolled back by itself with one alert; one that passes its
window is told so; it waits for a lock held by a newer change, stands down for a newer
deploy, and carries on after a restart. It is a bounded contract: only its own release's
tasks inside its window, back only to the release live just before, no action on a window
nobody watched, every app's guard at once, and a promise only while a serve watches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.slack import SlackBot, web_client
from commands.dispatch import Dispatcher
from commands.watching import watchers
from core.config import AlertsConfig, ControlConfig, NotifyRoute
from core.engine import Engine
from core.secrets import Vault
from core.store import Store
from core.swarm.servers import Servers
from core.swarm.testing import HEALTHY, STUCK, UNHEALTHY, Behaviour, FakeSwarm
from core.watch.alerts import AlertWatch
from tests.chat import result, say
from tests.clock import SwarmSteps
from tests.fake_plane import WEB, fast_swarm
from tests.fake_slack import FakeSlack
from tests.test_slack import SECRET, Harness, until

ALERTS = AlertsConfig(
    crash_restarts=2,
    crash_window_seconds=120,
    below_replicas_seconds=20,
    recover_seconds=10,
    usage_image=None,
    guard_seconds=60,
)
ROUTES = [
    NotifyRoute(platform="slack", channel="CALERTS", kinds=["alerts"]),
    NotifyRoute(platform="slack", channel="CDEPLOYS", kinds=["deploys"]),
]


@pytest.fixture
def fake() -> FakeSwarm:
    swarm = fast_swarm()
    return swarm


def open_bot(home: Path, fake: FakeSwarm) -> Dispatcher:
    engine = Engine(
        Store(home / "shipbot.db"),
        servers=Servers({"local": lambda: fake}),
        home=home,
        vault=Vault.open(home),
        clock=SwarmSteps(fake),
    )
    config = ControlConfig(admins=["console:alice"], notify=ROUTES, alerts=ALERTS)
    return Dispatcher(engine, config)


@pytest.fixture
async def bot(tmp_path: Path, fake: FakeSwarm):
    home = tmp_path / "home"
    home.mkdir()
    folder = tmp_path / "web"
    folder.mkdir()
    (folder / "app.yml").write_text(WEB)
    dispatcher = open_bot(home, fake)
    assert result(await say(dispatcher, f"apps add web --path {folder}")).ok
    yield dispatcher
    dispatcher.close()


def the_watch(bot: Dispatcher) -> AlertWatch:
    (watch,) = watchers(bot.engine.plane, bot.config, bot.notifier)
    return watch


def outbox(bot: Dispatcher, kind: str | None = None) -> list[tuple[str, str, dict]]:
    rows = bot.engine.store._rows("outbox", order_by="id")
    return [
        (r["channel"], r["kind"], json.loads(r["payload"])["fields"])
        for r in rows
        if kind in (None, r["kind"])
    ]


async def rounds(watch: AlertWatch, fake: FakeSwarm, count: int) -> None:
    for _ in range(count):
        fake.step()
        await watch.check()


def statuses(bot: Dispatcher) -> list[tuple[int, str]]:
    return [(r.number, r.status) for r in bot.engine.store.releases("web", "production")]


async def test_a_release_that_crash_loops_after_going_live_is_rolled_back_once(bot, fake):
    assert result(await say(bot, "deploy web 1")).ok
    watch = the_watch(bot)
    await watch.check()  # a `shipbot serve` is watching: the reply may promise the guard
    second = result(await say(bot, "deploy web 2"))
    assert second.ok
    assert second.details[-1] == (
        "🛡️ guarded for 1m: a crash loop or missing replicas rolls it back by itself"
    )
    fake.behave("web:2", UNHEALTHY)  # healthy at first, then its tasks fail and restart
    await rounds(watch, fake, 30)
    assert statuses(bot) == [(2, "failed"), (1, "live")]
    images = {
        t["Spec"]["ContainerSpec"]["Image"]
        for t in fake.tasks("web-production")
        if t["DesiredState"] == "running"
    }
    assert images == {"shipbot/web:1"}
    (guard,) = bot.engine.store.guards("web", "production")[:1]
    assert guard["status"] == "rolled_back"
    assert guard["reason"].startswith("it crash-loops: ")
    alerts_sent = [a for a in outbox(bot, "alerts") if not a[2]["ok"]]
    assert len(alerts_sent) == 1, alerts_sent  # one alert, not one per restart
    channel, _, alert = alerts_sent[0]
    assert channel == "CALERTS"
    assert (
        alert["title"]
        == "🔁 web (production) on local crash-looped after its deploy (exit code 137)"
    )
    assert alert["log_tail"] == ["listening on :9999"]
    assert alert["fields"]["exit code"] == "137" and alert["fields"]["server"] == "local"
    told = [(c, f["title"]) for c, k, f in outbox(bot, "deploys") if "guard" in f["title"]]
    title = "🛡️ the guard rolled web back on production from release 2 to release 1"
    assert told == [("CDEPLOYS", title)]  # (a console session has no outbox)
    audit = bot.engine.store.audit_log("web", limit=1)[0]
    assert (audit["user"], audit["result"]) == ("shipbot:guard", "ok")
    assert audit["command"] == "rollback web --env production (guard of release 2)"
    # the watcher keeps quiet about the same failure, then closes it once all is well
    await rounds(watch, fake, 30)
    assert [f["title"][:48] for _, _, f in outbox(bot, "alerts")] == [
        alert["title"][:48],
        "✅ web (production) on local recovered: 2/2 runni",
    ]


async def test_a_release_that_stays_healthy_passes_its_guard(bot, fake):
    assert result(await say(bot, "deploy web 1")).ok
    watch = the_watch(bot)
    await rounds(watch, fake, 20)
    assert bot.engine.store.guards("web", "production")[0]["status"] == "watching"
    await rounds(watch, fake, 30)
    assert bot.engine.store.guards("web", "production")[0]["status"] == "passed"
    passed = [f["title"] for _, _, f in outbox(bot, "deploys") if "guard" in f["title"]]
    expected = (
        "🛡️ web release 1 passed its guard on production: 1m with no crash loop and every "
        "replica running"
    )
    assert passed == [expected]  # to the deploys channel (a console session has no outbox)
    assert outbox(bot, "alerts") == []


async def test_below_replicas_for_the_threshold_rolls_back(bot, fake):
    assert result(await say(bot, "deploy web 1")).ok
    assert result(await say(bot, "deploy web 2")).ok
    fake.behave("web:2", STUCK)
    spec = fake.inspect_service("web-production")["Spec"]
    spec["Mode"]["Replicated"]["Replicas"] = 3  # a third task that never starts
    fake.update_service(spec)
    await rounds(bot and the_watch(bot), fake, 20)
    assert statuses(bot)[:2] == [(2, "failed"), (1, "live")]
    guard = bot.engine.store.guards("web", "production")[0]
    assert guard["reason"].startswith("it stayed below its replicas: 2/3 running for ")


async def test_the_guard_waits_for_a_lock_held_by_a_newer_change(bot, fake):
    assert result(await say(bot, "deploy web 1")).ok
    assert result(await say(bot, "deploy web 2")).ok
    fake.behave("web:2", UNHEALTHY)
    store = bot.engine.store
    assert (
        store.acquire_lock(
            "web/production", owner="console:bob", what="deploy", ttl=60, host="here"
        )
        is None
    )
    watch = the_watch(bot)
    await rounds(watch, fake, 20)
    assert statuses(bot)[0] == (2, "live")  # not fought over
    assert store.guards("web", "production")[0]["status"] == "watching"
    store.release_lock("web/production", "console:bob")
    await rounds(watch, fake, 5)
    assert statuses(bot)[:2] == [(2, "failed"), (1, "live")]


async def test_a_newer_deploy_supersedes_the_guard(bot, fake):
    assert result(await say(bot, "deploy web 1")).ok
    assert result(await say(bot, "deploy web 2")).ok
    guards = bot.engine.store.guards("web", "production")
    assert [(g["release"], g["status"]) for g in guards] == [(2, "watching"), (1, "superseded")]


async def test_the_guard_carries_on_after_a_restart(bot, fake, tmp_path):
    assert result(await say(bot, "deploy web 1")).ok
    assert result(await say(bot, "deploy web 2")).ok
    fake.behave("web:2", UNHEALTHY)
    bot.close()  # the process stops; its window is in SQLite
    again = open_bot(tmp_path / "home", fake)
    try:
        await rounds(the_watch(again), fake, 30)
        assert statuses(again)[:2] == [(2, "failed"), (1, "live")]
        assert [f["ok"] for _, _, f in outbox(again, "alerts")] == [False, True]
    finally:
        again.close()
    fake.behave("web:1", HEALTHY)


async def test_on_slack_the_guard_edits_the_deploy_message_and_answers_in_its_thread(bot, fake):
    slack = await FakeSlack().start()
    chat = SlackBot(bot, web_client("xoxb-test", slack.base_url), signing_secret=SECRET)
    runner = await chat.serve_http("127.0.0.1", 0)
    host, port = runner.addresses[0][:2]
    harness = Harness(slack, chat, f"http://{host}:{port}/slack/events", Path("."))
    try:
        bot.config = bot.config.model_copy(update={"admins": ["console:alice", "slack:UADMIN"]})
        assert result(await say(bot, "deploy web 1")).ok
        await harness.command("/deploy", "web 2", "UADMIN", channel="CTEAM")

        def shown() -> list:
            return [c for c in slack.of("chat.update") if "release 2 is live" in c.args["text"]]

        status_ts = (await until(shown, timeout=20))[-1].args["ts"]
        await until(lambda: bot.engine.store.guards("web", "production")[0]["anchor"], 10)
        fake.behave("web:2", UNHEALTHY)
        await rounds(the_watch(bot), fake, 30)
        await bot.notifier.deliver_due("slack", chat.deliver)
        title = "the guard rolled web back on production from release 2 to release 1"
        edits = [c for c in slack.of("chat.update") if title in c.args["text"]]
        assert [(c.args["channel"], c.args["ts"]) for c in edits] == [("CTEAM", status_ts)]
        threaded = [c for c in slack.of("chat.postMessage") if title in c.args["text"]]
        assert [(c.args["channel"], c.args.get("thread_ts")) for c in threaded] == [
            ("CTEAM", status_ts),  # in the deploy's thread
            ("CDEPLOYS", None),  # and the deploys channel
        ]
    finally:
        await runner.cleanup()
        await slack.stop()


async def test_log_tails_in_alerts_mask_the_apps_secrets(bot, fake):
    store, vault = bot.engine.store, bot.engine.vault
    secret = "s3cr3t-token-value-42"
    store.set_variable(
        app="web",
        env="production",
        key="TOKEN",
        value=vault.encrypt(secret),
        secret=True,
        updated_by="console:alice",
    )
    assert result(await say(bot, "deploy web 1")).ok
    assert result(await say(bot, "deploy web 2")).ok
    leaky = Behaviour("unhealthy", log=(f"connecting with {secret}", "refused"))
    fake.behave("web:2", leaky)
    await rounds(the_watch(bot), fake, 30)
    payloads = [r["payload"] for r in store._rows("outbox")]
    assert not any(secret in p for p in payloads)
    (alert,) = [f for _, _, f in outbox(bot, "alerts") if not f["ok"]]
    assert (
        alert["log_tail"][0].startswith("connecting with ") and secret not in alert["log_tail"][0]
    )


async def test_without_a_serve_the_reply_promises_nothing_and_a_passed_window_does_nothing(
    bot, fake
):
    assert result(await say(bot, "deploy web 1")).ok
    second = result(await say(bot, "deploy web 2"))
    assert second.details[-1] == (
        "🛡️ not guarded yet: no `shipbot serve` is watching local; one started within 1m "
        "guards the rest of the window"
    )
    fake.behave("web:2", UNHEALTHY)
    for _ in range(200):  # the window passes while no serve runs
        fake.step()
    await rounds(the_watch(bot), fake, 3)  # then `shipbot serve` starts
    assert statuses(bot)[:2] == [(2, "live"), (1, "superseded")]  # no action
    guard = bot.engine.store.guards("web", "production")[0]
    assert guard["status"] == "unwatched"
    told = [
        f["title"]
        for _, _, f in outbox(bot, "deploys")
        if "guard" in f["title"] or "watched" in f["title"]
    ]
    assert told == [
        "🛡️ web release 2 was not watched on production: its 1m window ended while no "
        "`shipbot serve` watched; nothing was done"
    ]
    fake.behave("web:2", HEALTHY)


async def test_failures_of_another_release_are_not_the_guards(bot, fake):
    assert result(await say(bot, "deploy web 1")).ok
    watch = the_watch(bot)
    await watch.check()
    assert result(await say(bot, "deploy web 2")).ok
    # Swarm runs release 1's image under release 2's name (a failed rollback, a hand update)
    spec = fake.inspect_service("web-production")["Spec"]
    spec["TaskTemplate"]["ContainerSpec"]["Image"] = "shipbot/web:1"
    fake.behave("web:1", UNHEALTHY)
    fake.update_service(spec)
    await rounds(watch, fake, 30)
    assert statuses(bot)[:2] == [(2, "live"), (1, "superseded")]  # nothing rolled back
    guard = bot.engine.store.guards("web", "production")[0]
    assert guard["status"] == "superseded"
    assert (
        guard["reason"] == "Swarm runs shipbot/web:1, not release 2's image: see `status --drift`"
    )
    fake.behave("web:1", HEALTHY)


async def test_the_guard_goes_back_only_to_the_release_live_just_before(bot, fake):
    fake.publish("web:3")
    watch = the_watch(bot)
    await watch.check()
    for text in ("deploy web 1", "deploy web 2", "rollback web 1", "deploy web 3"):
        assert result(await say(bot, text)).ok, text
    fake.behave("web:3", UNHEALTHY)
    await rounds(watch, fake, 30)
    # release 1 was live before release 3: not release 2, the newest good one below it
    assert statuses(bot)[:3] == [(3, "failed"), (2, "superseded"), (1, "live")]


async def test_a_failed_newer_deploy_ends_the_guard(bot, fake):
    fake.publish("web:3")
    watch = the_watch(bot)
    await watch.check()
    assert result(await say(bot, "deploy web 1")).ok
    assert result(await say(bot, "deploy web 2")).ok
    fake.behave("web:3", UNHEALTHY)
    assert not result(await say(bot, "deploy web 3")).ok  # Swarm keeps release 2 live
    await watch.check()
    guard = next(g for g in bot.engine.store.guards("web", "production") if g["release"] == 2)
    assert (guard["status"], guard["reason"]) == ("superseded", "release 3 was deployed after it")


async def test_two_apps_guards_roll_back_side_by_side(bot, fake, tmp_path):
    folder = tmp_path / "api"
    folder.mkdir()
    (folder / "app.yml").write_text(WEB.replace("name: web", "name: api"))
    assert result(await say(bot, f"apps add api --path {folder}")).ok
    watch = the_watch(bot)
    await watch.check()
    for app in ("web", "api"):
        assert result(await say(bot, f"deploy {app} 1")).ok
        assert result(await say(bot, f"deploy {app} 2")).ok
    order: list[str] = []
    update, set_guard = fake.update_service, bot.engine.store.set_guard

    def updated(spec, *args, **kwargs):
        order.append(f"update {spec['Name']}")
        return update(spec, *args, **kwargs)

    def finished(guard_id, status, *args, **kwargs):
        if status == "rolled_back":
            order.append("one finished")
        return set_guard(guard_id, status, *args, **kwargs)

    fake.update_service = updated
    bot.engine.store.set_guard = finished
    fake.behave("web:2", UNHEALTHY)  # both apps run this image as their release 2
    for _ in range(30):  # inside the window: failures pile up
        fake.step()
    await watch.check()
    for app in ("web", "api"):
        releases = bot.engine.store.releases(app, "production")
        assert [(r.number, r.status) for r in releases] == [(2, "failed"), (1, "live")], app
    # one round: both rollbacks were under way before either finished
    assert order[:3] in (
        ["update web-production", "update api-production", "one finished"],
        ["update api-production", "update web-production", "one finished"],
    ), order
    assert order.count("one finished") == 2
