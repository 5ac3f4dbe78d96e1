"""The daily digest: per channel, scoped by its routes, once per fire time, on an injected clock."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from commands.dispatch import Dispatcher
from commands.replies import Message, decode, encode
from core.config import ConfigError, ControlConfig, DigestConfig, NotifyRoute, load_config
from core.deploy.drift import Drift
from core.engine import Engine
from core.secrets import MASK, Masker, Vault
from core.store import Store
from core.swarm.servers import Servers
from core.watch.backups import ago
from core.watch.digest import PROVIDERS, Digest, Scope, Section, Window
from core.watch.drift import DriftWatch
from rooms.watch import digest as digest_jobs
from tests.clock import ManualClock

UTC = dt.UTC
DAY = 86400.0
SECRET = "hunter2-hunter2"  # api's, in production: a failure message that printed it


def mask(app: str | None, env: str | None, text: str) -> str:
    """As serve's: the secrets of the app and environment a line is about."""
    return Masker([SECRET] if (app, env) == ("api", "production") else [])(text)


def next_eight(after: float) -> dt.datetime:
    """The first 08:00 UTC after ``after``: the digest that covers it."""
    moment = dt.datetime.fromtimestamp(after, UTC)
    fire = moment.replace(hour=8, minute=0, second=0, microsecond=0)
    return fire if fire > moment else fire + dt.timedelta(days=1)


@pytest.fixture
def store(tmp_path: Path):
    store = Store(tmp_path / "shipbot.db")
    yield store
    store.close()


def change(store: Store, app: str, env: str, kind: str, status: str, message: str = "", **kw):
    run = store.start_deployment(app=app, env=env, kind=kind, started_by="console:alice", **kw)
    store.finish_deployment(run, status, message)
    return run


def history(store: Store) -> float:
    """A day of news; returns when it happened."""
    change(store, "web", "production", "deploy", "succeeded", "release 3 is live", release=3)
    change(store, "api", "production", "deploy", "failed", f"health check: {SECRET}", release=8)
    change(store, "web", "staging", "rollback", "succeeded", release=2)
    old = change(store, "web", "production", "deploy", "failed", "long ago", release=2)
    with store._write() as db:  # a failure two days before: outside the window
        db["deployments"].update(old, {"finished_at": time.time() - 2 * DAY})
    now = time.time()
    store.save_cert_states(
        [
            {"domain": "web.example.com", "app": "web", "env": "production", "serial": "1",
             "not_after": now + 40 * DAY, "alert": "", "error": ""},
            {"domain": "api.example.com", "app": "api", "env": "production", "serial": "2",
             "not_after": now + 5 * DAY, "alert": "expiry", "error": ""},
        ]
    )  # fmt: skip
    good = store.start_backup("maindb", "postgres", "k1", "schedule", now - 3 * 3600)
    store.finish_backup(good, "ok", now - 3 * 3600 + 60, size=100)
    bad = store.start_backup("maindb", "postgres", "k2", "schedule", now - 600)
    store.finish_backup(bad, "failed", now - 590, error="pg_dump: connection refused")
    store.save_drift_states(
        [{"key": "local/web/production/image differs", "server": "local", "app": "web",
          "env": "production", "kind": "image differs", "detail": "runs busybox"}]
    )  # fmt: skip
    return now


def outbox(store: Store) -> list[tuple[str, str, str, str]]:
    rows = store.due_messages("slack", time.time() + 10 * DAY, limit=100)
    return [(r["platform"], r["channel"], r["kind"], decode(r["payload"]).text) for r in rows]


def enqueue_into(store: Store):
    def enqueue(platform: str, channel: str, text: str) -> int:
        return store.enqueue(
            platform=platform, channel=channel, kind="digest", payload=encode(Message(text))
        )

    return enqueue


ROUTES = [
    NotifyRoute(platform="slack", channel="ops"),  # every kind, digest included
    NotifyRoute(platform="slack", channel="web", apps=["web"], kinds=["deploys", "digest"]),
    NotifyRoute(
        platform="slack", channel="web", apps=["web"], envs=["production"], kinds=["certs"]
    ),
    NotifyRoute(platform="slack", channel="pager", kinds=["alerts"]),  # no digest asked
]


def test_each_channel_gets_what_its_routes_take(store):
    happened = history(store)
    fire = next_eight(happened)
    digest = Digest(
        store, DigestConfig(), ROUTES, enqueue_into(store), mask=mask, clock=ManualClock.at(fire)
    )
    posted = digest.post_now()
    assert [(p.platform, p.channel) for p in posted] == [("slack", "ops"), ("slack", "web")]
    at = dt.datetime.fromtimestamp(happened, UTC).strftime("%m-%d %H:%M")
    web = posted[1].text
    assert web.splitlines()[0] == f"📋 shipbot digest for {fire:%Y-%m-%d} 08:00 UTC, the last 24 h"
    sections = web.split("\n\n")[1:]
    assert sections[0] == (
        "*Deploys: 2 succeeded, 0 did not*\n"
        f"  ✅ web (production) deploy release 3 by console:alice at {at}\n"
        f"  ✅ web (staging) rollback release 2 by console:alice at {at}"
    )
    assert sections[1] == "*Failures: none*"
    assert sections[2].startswith("*Certificates: 1*\n  🔒 1 valid; the soonest to end: web.exa")
    assert len(sections) == 3  # no backups, no drift: the channel takes neither
    ops = posted[0].text.split("\n\n")[1:]
    assert [s.splitlines()[0] for s in ops] == [
        "*Deploys: 2 succeeded, 1 did not*",
        "*Failures: 1*",
        "*Certificates: 2*",
        "*Backups: 1 databases*",
        "*Drift: 1 open (`status --drift`)*",
        "*Alerts: none open*",
    ]
    assert ops[1] == (
        "*Failures: 1*\n"
        f"  ❌ api (production) deploy release 8 failed at {at}: health check: {MASK}"
    )
    assert ops[2].splitlines()[1].startswith("  ⚠️ api.example.com ends ")
    age = ago(fire.timestamp() - (happened - 3 * 3600 + 60))
    assert ops[3] == (
        f"*Backups: 1 databases*\n  ⚠️ maindb: last good backup {age} ago (backup 1), 1 failed: "
        "pg_dump: connection refused"
    )
    assert (
        ops[4] == "*Drift: 1 open (`status --drift`)*\n  ⚠️ web (production) on local: image differs"
    )
    assert outbox(store) == [
        ("slack", "ops", "digest", posted[0].text),
        ("slack", "web", "digest", web),
    ]


def test_posted_once_per_fire_time_across_restarts(store, tmp_path):
    fire = next_eight(history(store))
    clock = ManualClock.at(fire + dt.timedelta(minutes=5))
    assert (
        len(
            Digest(
                store, DigestConfig(), ROUTES, enqueue_into(store), mask=mask, clock=clock
            ).post_now()
        )
        == 2
    )
    # a second run within the misfire grace, and a restarted process: nothing twice
    assert (
        Digest(
            store, DigestConfig(), ROUTES, enqueue_into(store), mask=mask, clock=clock
        ).post_now()
        == []
    )
    store.close()
    reopened = Store(tmp_path / "shipbot.db")
    again = Digest(reopened, DigestConfig(), ROUTES, enqueue_into(reopened), mask=mask, clock=clock)
    assert again.post_now() == []
    clock.advance(24 * 3600)  # the next day's digest: news no more
    (ops, web) = again.post_now()
    assert "*Deploys: 0 succeeded, 0 did not*" in web.text
    assert len(outbox(reopened)) == 4
    reopened.close()


def test_a_section_provider_added_later_is_one_line(store):
    def alerts(store: Store, scope: Scope, window: Window) -> Section | None:
        return (
            Section("Open alerts: 1", ("🔥 web (production) crash loop",))
            if scope.wants("alerts")
            else None
        )

    fire = next_eight(history(store))
    digest = Digest(
        store,
        DigestConfig(hours=72),
        ROUTES,
        enqueue_into(store),
        mask=mask,
        providers=(*PROVIDERS, alerts),
        clock=ManualClock.at(fire),
    )
    ops, web = digest.post_now()
    assert ops.text.endswith("*Open alerts: 1*\n  🔥 web (production) crash loop")
    assert "the last 72 h" in ops.text and "Open alerts" not in web.text
    assert "*Failures: 2*" in ops.text  # the failure two days before is inside 72 h


def test_digest_config(tmp_path):
    assert ControlConfig().digest is None
    assert ControlConfig.model_validate({"digest": "30 7 * * 1-5"}).digest == DigestConfig(
        cron="30 7 * * 1-5"
    )
    (tmp_path / "shipbot.yml").write_text("digest: {cron: '61 * * * *'}\n")
    with pytest.raises(
        ConfigError, match="digest.cron: .*'61 \\* \\* \\* \\*' is not a cron expression"
    ):
        load_config(tmp_path)


async def test_serve_schedules_the_digest_on_apscheduler(tmp_path):
    home = tmp_path
    engine = Engine(
        Store(home / "shipbot.db"), servers=Servers({}), home=home, vault=Vault.open(home)
    )
    history(engine.store)
    engine.store.set_variable(
        app="api", env="production", key="TOKEN", value=engine.vault.encrypt(SECRET),
        secret=True, updated_by="console:alice",
    )  # fmt: skip
    with engine.store._write() as db:  # an hour ago: inside the window of the latest fire
        db.execute("UPDATE deployments SET finished_at = finished_at - 3600")
    config = ControlConfig(digest="* * * * *", notify=ROUTES)
    bot = Dispatcher(engine, config)
    jobs = digest_jobs(bot)
    scheduler = jobs.start()
    try:
        (job,) = scheduler.get_jobs()
        assert job.id == "digest"
        assert 0 < (job.next_run_time - dt.datetime.now(UTC)).total_seconds() <= 60
        assert job.misfire_grace_time == 3600 and job.coalesce and job.max_instances == 1
        await job.func(*job.args)  # what APScheduler runs at the fire time
    finally:
        jobs.stop()
    sent = outbox(engine.store)
    assert [(p, c, k) for p, c, k, _ in sent] == [
        ("slack", "ops", "digest"),
        ("slack", "web", "digest"),
    ]
    assert "deploy release 8 failed at" in sent[0][3] and f"health check: {MASK}" in sent[0][3]
    assert not any(SECRET in text for *_, text in sent)
    assert digest_jobs(Dispatcher(engine, ControlConfig())).entries == []
    bot.close()


async def test_the_digest_lists_what_the_drift_watcher_keeps_open(store):
    async def find() -> list[Drift]:
        return [Drift("local", "api", "staging", "service missing", "api-staging is not on local")]

    await DriftWatch(store, find, lambda post: None).check()
    fire = next_eight(time.time())
    (ops,) = Digest(
        store,
        DigestConfig(),
        ROUTES[:1],
        enqueue_into(store),
        mask=mask,
        clock=ManualClock.at(fire),
    ).post_now()
    assert ops.text.endswith(
        "*Drift: 1 open (`status --drift`)*\n  ⚠️ api (staging) on local: service missing"
        "\n\n*Alerts: none open*"
    )


def test_the_digest_lists_open_alerts_masked_and_not_closed_ones(store):
    opened = time.time() - 600
    row = dict(server="local", status="open", first_seen=opened, last_seen=opened, detail="")
    store.put_alert(
        {
            **row,
            "key": "crash:api-production",
            "kind": "crash loop",
            "app": "api",
            "env": "production",
            "subject": f"api-production exits 3 ({SECRET})",
            "opened_at": opened,
        }
    )
    store.put_alert(
        {
            **row,
            "key": "node:n2",
            "kind": "node down",
            "app": None,
            "env": None,
            "subject": "node n2",
            "opened_at": opened,
        }
    )
    store.put_alert(
        {
            **row,
            "key": "oom:web-staging",
            "kind": "oom",
            "app": "web",
            "env": "staging",
            "subject": "web-staging",
            "status": "closed",
            "opened_at": opened,
            "closed_at": opened + 60,
        }
    )
    fire = next_eight(time.time())
    (ops,) = Digest(
        store,
        DigestConfig(),
        ROUTES[:1],
        enqueue_into(store),
        mask=mask,
        clock=ManualClock.at(fire),
    ).post_now()
    section = ops.text[ops.text.index("*Alerts: 2 open*") :]
    assert SECRET not in ops.text and MASK in section
    assert "🚨 crash loop on local: api-production exits 3" in section
    assert "🚨 node down on local: node n2" in section
    assert "web-staging" not in section
