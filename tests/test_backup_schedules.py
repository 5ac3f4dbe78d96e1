"""Backup schedules, verify, report and the silence watcher, without a Docker engine: the
real dispatcher on the fake swarm, moto on loopback as S3, the fake's exec handler as the
database's tools, and injected clocks instead of waiting."""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import json
import threading
import uuid
from pathlib import Path

import pytest
from aiohttp import web

from commands.catalog.reports import Runner, guarded_backup, report_rows
from commands.dispatch import Dispatcher
from commands.replies import Message
from core.config import BackupsConfig, ControlConfig, NotifyRoute
from core.data.s3 import S3Store
from core.engine import NETWORK, Engine
from core.scheduler.cron import cron_days
from core.scheduler.jobs import BackupScheduler, Job, due, due_jobs, jobs, last_fire, period
from core.secrets import Vault
from core.store import Store
from core.swarm.servers import Servers
from core.swarm.testing import FakeExec, FakeSwarm
from core.watch.backups import BackupWatch, DbFacts, WatchState, step_db
from tests.chat import result, say, table
from tests.clock import ManualClock, SwarmSteps
from tests.fast_plane import fake_swarm
from tests.loopback import LoopbackServer
from tests.moto_s3 import KEYS, make_bucket, s3_config

ping = NETWORK.ping  # the heartbeat, through the root's HTTP factory

ADMIN = "console:root"
UTC = dt.UTC
PG_DUMP = b"PGDMP" + bytes(range(256)) * 400


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


# the time functions: APScheduler's CronTrigger with any clock
def test_fire_times_exactly():
    assert last_fire("0 3 * * *", at("2026-11-23 02:59")) == at("2026-11-22 03:00")
    assert last_fire("0 3 * * *", at("2026-11-23 03:00")) == at("2026-11-23 03:00")
    assert last_fire("*/5 * * * *", at("2026-11-23 10:07:30")) == at("2026-11-23 10:05")
    assert last_fire("0 4 * * 0", at("2026-11-23 12:00")) == at("2026-11-22 04:00")  # a Sunday
    assert last_fire("0 4 * * 7", at("2026-11-23 12:00")) == at("2026-11-22 04:00")
    assert last_fire("0 4 * * 1-5", at("2026-11-23 03:00")) == at("2026-11-20 04:00")  # Friday
    assert cron_days("*/2") == {0, 2, 4, 6} and cron_days("fri-7") == {5, 6, 0}
    assert period("0 3 * * *", at("2026-11-23 12:00")) == dt.timedelta(days=1)
    assert period("*/5 * * * *", at("2026-11-23 12:01")) == dt.timedelta(minutes=5)
    assert due("0 3 * * *", at("2026-11-23 02:00"), at("2026-11-23 02:59")) is None
    assert due("0 3 * * *", at("2026-11-23 02:00"), at("2026-11-23 03:00:01")) == at(
        "2026-11-23 03:00"
    )


def test_schedules_from_shipbot_yml():
    config = BackupsConfig.model_validate(
        {
            "s3": {"bucket": "abc"},
            "schedules": {
                "maindb": "0 3 * * *",
                "cache": {"cron": "*/15 * * * *", "verify": "0 4 * * 0", "query": "DBSIZE"},
            },
            "report": "0 9 * * 1",
        }
    )
    assert jobs(config) == [
        Job("backup/cache", "backup", "cache", "*/15 * * * *"),
        Job("verify/cache", "verify", "cache", "0 4 * * 0"),
        Job("backup/maindb", "backup", "maindb", "0 3 * * *"),
        Job("report", "report", None, "0 9 * * 1"),
    ]
    assert [
        j.id for j in due_jobs(jobs(config), at("2026-11-23 02:50"), at("2026-11-23 03:00"))
    ] == [
        "backup/cache",
        "backup/maindb",
    ]
    with pytest.raises(ValueError, match="is not a cron expression"):
        BackupsConfig.model_validate({"s3": {"bucket": "abc"}, "schedules": {"x": "0 3 * *"}})


async def test_the_scheduler_is_rebuilt_with_grace_and_one_instance():
    config = BackupsConfig.model_validate(
        {
            "s3": {"bucket": "abc"},
            "schedules": {"maindb": "0 3 * * *"},
            "misfire_grace_seconds": 900,
        }
    )

    async def never(job: Job) -> None:
        raise AssertionError(job)

    scheduler = BackupScheduler(config, never)
    running = scheduler.start(paused=True)
    try:
        (job,) = running.get_jobs()
        assert (job.id, job.misfire_grace_time, job.max_instances, job.coalesce) == (
            "backup/maindb", 900, 1, True
        )  # fmt: skip
        after = job.trigger.get_next_fire_time(None, at("2026-11-23 03:00:01"))
        assert after == at("2026-11-24 03:00")
    finally:
        scheduler.stop()


# the watcher's state machine
FACTS = DbFacts("maindb", "0 3 * * *", created=at("2026-11-01 00:00").timestamp())


def test_a_missed_run_alerts_once_and_a_good_backup_closes_it():
    since = at("2026-11-20 12:00").timestamp()
    prev = WatchState("maindb", since=since)
    posts, state = step_db(FACTS, prev, at("2026-11-21 03:05"), 600, 3600)
    assert posts == []  # 03:00 is still within the misfire grace
    posts, state = step_db(FACTS, state, at("2026-11-21 03:11"), 600, 3600)
    assert posts == [
        "⏰ the scheduled backup of maindb due 2026-11-21 03:00 UTC never started "
        "(`0 3 * * *`): was shipbot or its scheduler down? `backup run maindb`"
    ]
    assert step_db(FACTS, state, at("2026-11-21 05:00"), 600, 3600)[0] == []
    good = at("2026-11-21 06:00").timestamp()
    facts = DbFacts("maindb", "0 3 * * *", good, 7, good - 5, FACTS.created)
    posts, state = step_db(facts, state, at("2026-11-21 06:01"), 600, 3600)
    assert posts == [
        "✅ maindb has a good backup again (backup 7, 2026-11-21 06:00 UTC); the backup "
        "alert is closed"
    ]
    assert (state.missed, state.stale) == (None, None)


def test_no_good_backup_within_the_schedule_plus_grace():
    good = at("2026-11-20 03:01").timestamp()
    facts = DbFacts("maindb", "0 3 * * *", good, 3, at("2026-11-21 03:00").timestamp())
    prev = WatchState("maindb", since=good)
    assert step_db(facts, prev, at("2026-11-21 04:00"), 600, 3600)[0] == []
    posts, state = step_db(facts, prev, at("2026-11-21 04:02"), 600, 3600)
    assert posts == [
        "⚠️ maindb has no good backup within its schedule `0 3 * * *` plus 1h00m of grace: "
        "the last good one is from 2026-11-20 03:01 UTC, 1d1h ago; `backup list maindb` "
        "shows why"
    ]
    assert state.stale == good
    assert step_db(facts, state, at("2026-11-21 09:00"), 600, 3600)[0] == []


# against moto and the fake swarm, through the real dispatcher
@pytest.fixture
def plane(tmp_path: Path, monkeypatch, s3_url):
    for key, value in KEYS.items():
        monkeypatch.setenv(key, value)
    bucket = f"sch-{uuid.uuid4().hex[:10]}"
    make_bucket(s3_url, bucket)
    home = tmp_path / "home"
    home.mkdir()
    swarm = fake_swarm("postgres:16")
    config = ControlConfig(
        admins=[ADMIN],
        notify=[NotifyRoute(platform="console", channel="ops", kinds=["backups"])],
        backups=BackupsConfig(
            s3=s3_config(s3_url, bucket),
            min_bytes=100,
            schedules={"maindb": {"cron": "0 3 * * *"}},
        ),
    )
    engine = Engine(
        Store(home / "shipbot.db"),
        servers=Servers({"local": lambda: swarm}),
        home=home,
        vault=Vault.open(home),
        clock=SwarmSteps(swarm),
    )
    bot = Dispatcher(engine, config)
    yield bot, swarm
    bot.close()


async def create_db(bot: Dispatcher, swarm: FakeSwarm, name: str = "maindb") -> str:
    """``db create``, then the container's environment as the engine shows it; its id."""
    assert result(await say(bot, f"db create postgres {name}", ADMIN)).ok
    spec = swarm.inspect_service(f"db-{name}")["Spec"]["TaskTemplate"]["ContainerSpec"]
    (task,) = [t for t in swarm.tasks(f"db-{name}") if t["Status"]["State"] == "running"]
    container = task["Status"]["ContainerStatus"]["ContainerID"]
    swarm.containers[container]["Config"]["Env"] = list(spec["Env"])
    swarm.containers[container]["State"]["Running"] = True
    return container


def tools(swarm: FakeSwarm, dump: bytes = PG_DUMP, gate: threading.Event | None = None):
    """pg_dump gives ``dump``; pg_restore takes anything; psql counts two tables."""
    entered = threading.Event()

    def handler(container, argv, env):
        if argv[0] == "pg_dump":
            entered.set()
            if gate is not None:
                assert gate.wait(10)
            return FakeExec([dump[i : i + 70_000] for i in range(0, len(dump), 70_000)])
        if argv[0] == "pg_restore":
            return FakeExec()
        if argv[0] == "psql":
            return FakeExec([b"public.orders|3\npublic.users|2\n"])
        return FakeExec(code=127, err=f"{argv[0]}: not found")

    swarm.exec_handler = handler
    return entered


def posted(bot: Dispatcher) -> list[str]:
    return [row["payload"] for row in bot.engine.store.due_messages("console", 1e12)]


async def test_a_due_schedule_runs_a_backup_that_uploads_and_posts(plane):
    bot, swarm = plane
    await create_db(bot, swarm)
    tools(swarm)
    all_jobs = jobs(bot.config.backups)
    assert due_jobs(all_jobs, at("2026-11-23 02:00"), at("2026-11-23 02:59")) == []
    (job,) = due_jobs(all_jobs, at("2026-11-23 02:00"), at("2026-11-23 03:00:01"))
    done = await Runner(bot.engine.plane, bot.config, bot.notifier)(job)
    assert done.ok, done
    (row,) = bot.engine.store.good_backups("maindb")
    assert row["started_by"] == "schedule"
    store = S3Store(bot.config.backups.s3)
    body = store.client.get_object(Bucket=bot.config.backups.s3.bucket, Key=row["key"])["Body"]
    assert gzip.decompress(body.read()) == PG_DUMP
    store.close()
    assert any(f"backup {row['id']} of maindb is stored" in p for p in posted(bot))


async def test_two_due_runs_of_one_database_do_not_overlap(plane):
    bot, swarm = plane
    await create_db(bot, swarm)
    gate = threading.Event()
    entered = tools(swarm, gate=gate)
    args = (bot.engine.plane, bot.config, bot.notifier, "maindb", "schedule")
    first = asyncio.create_task(guarded_backup(*args))
    assert await asyncio.to_thread(entered.wait, 10)
    second = await guarded_backup(*args)
    gate.set()
    assert (await first).ok
    assert not second.ok and "maindb is busy: backup by schedule" in second.details[0]
    assert len(bot.engine.store.backups("maindb")) == 1
    assert bot.engine.store.acquire_lock("db/maindb", owner="t", what="t", ttl=60, host="h") is None


async def test_a_backup_from_chat_waits_for_no_one_and_never_overlaps_a_scheduled_one(plane):
    bot, swarm = plane
    await create_db(bot, swarm)
    gate = threading.Event()
    entered = tools(swarm, gate=gate)
    args = (bot.engine.plane, bot.config, bot.notifier, "maindb", "schedule")
    scheduled = asyncio.create_task(guarded_backup(*args))
    assert await asyncio.to_thread(entered.wait, 10)
    typed = result(await say(bot, "backup run maindb", ADMIN))
    gate.set()
    assert (await scheduled).ok
    assert not typed.ok and "maindb is busy: backup by schedule" in typed.details[0]
    assert len(bot.engine.store.backups("maindb")) == 1


async def test_missed_schedule_alerts_once_then_a_good_backup_recovers(plane):
    bot, swarm = plane
    await create_db(bot, swarm)
    store = bot.engine.store
    # the backup below runs on the plane's clock (the fake swarm's): the watcher's walks up
    fire = last_fire("0 3 * * *", bot.engine.plane.clock.now() - dt.timedelta(days=1))
    clock = ManualClock.at(fire - dt.timedelta(hours=1))

    def publish(post):
        bot.notifier.publish("backups", post.database, None, Message(post.text))

    watch = BackupWatch(store, bot.config.backups, publish, clock=clock)
    assert await watch.check() == []  # first sight: earlier fire times are not "missed"
    clock.advance_to(fire + dt.timedelta(minutes=30))  # shipbot was down at 03:00
    (alert,) = await watch.check()
    due_at = fire.strftime("%Y-%m-%d %H:%M UTC")
    assert f"backup of maindb due {due_at} never started" in alert.text
    clock.advance_to(fire + dt.timedelta(minutes=40))
    assert await watch.check() == []  # once
    tools(swarm)
    done = await guarded_backup(bot.engine.plane, bot.config, bot.notifier, "maindb", ADMIN)
    assert done.ok
    clock.advance_to(bot.engine.plane.clock.now())
    (recovery,) = await watch.check()
    assert recovery.text.startswith("✅ maindb has a good backup again (backup 1,")
    texts = json.dumps(posted(bot), ensure_ascii=False)
    assert texts.count("never started") == 1 and texts.count("good backup again") == 1


async def test_the_report_lists_ages_and_failures(plane):
    bot, swarm = plane
    await create_db(bot, swarm)
    await create_db(bot, swarm, "other")
    tools(swarm)
    args = (bot.engine.plane, bot.config, bot.notifier)
    assert (await guarded_backup(*args, "maindb", ADMIN)).ok
    tools(swarm, dump=b"PGDMP tiny")
    assert not (await guarded_backup(*args, "maindb", ADMIN)).ok
    good = bot.engine.store.good_backups("maindb")[0]["finished_at"]
    rows = report_rows(bot.engine.store, bot.config.backups, good + 7260)
    stamp = dt.datetime.fromtimestamp(good, UTC).strftime("%Y-%m-%d %H:%M UTC")
    assert rows == [
        ("maindb", "0 3 * * *", stamp, "2h01m", "1", rows[0][5]),
        ("other", "", "never", "", "0", ""),
    ]
    assert "below the floor of 100" in rows[0][5]
    shown = table(await say(bot, "backup report", ADMIN))
    assert [r[0] for r in shown.rows] == ["maindb", "other"]


async def test_verify_passes_on_a_good_backup_and_fails_on_a_corrupted_one(plane):
    bot, swarm = plane
    await create_db(bot, swarm)
    tools(swarm)
    args = (bot.engine.plane, bot.config, bot.notifier)
    assert (await guarded_backup(*args, "maindb", ADMIN)).ok
    done = result(await say(bot, "backup verify maindb", ADMIN))
    assert done.ok, done
    assert done.details[:3] == (
        "backup 1 restored: 2 tables, 5 rows",
        "public.orders: 3",
        "public.users: 2",
    )
    assert swarm.inspect_service("db-verify-maindb-1") is None  # the throwaway is gone
    assert swarm.inspect_volume("db-verify-maindb-1-data") is None
    row = bot.engine.store.good_backups("maindb")[0]
    s3 = S3Store(bot.config.backups.s3)
    s3.client.put_object(
        Bucket=bot.config.backups.s3.bucket, Key=row["key"], Body=gzip.compress(b"PGDMP rot")
    )
    s3.close()
    bad = result(await say(bot, "backup verify maindb", ADMIN))
    assert not bad.ok and "changed since the backup" in bad.details[0]
    assert [v["ok"] for v in bot.engine.store.verifies("maindb")] == [0, 1]
    assert sum("verified" in p or "verify of maindb failed" in p for p in posted(bot)) == 2


class Beat(LoopbackServer):
    def __init__(self) -> None:
        self.hits = 0

    def routes(self, app: web.Application) -> None:
        async def hit(request: web.Request) -> web.Response:
            self.hits += 1
            return web.Response(text="ok")

        app.router.add_get("/beat", hit)


async def test_the_heartbeat_is_pinged_after_a_good_backup_only(plane, tmp_path):
    bot, swarm = plane
    await create_db(bot, swarm)
    server = await Beat().start()
    try:
        url = f"http://127.0.0.1:{server.port}/beat"
        config = bot.config.model_copy(
            update={"backups": bot.config.backups.model_copy(update={"heartbeat_url": url})}
        )
        tools(swarm, dump=b"PGDMP tiny")
        assert not (await guarded_backup(bot.engine.plane, config, bot.notifier, "maindb", "t")).ok
        assert server.hits == 0
        tools(swarm)
        assert (await guarded_backup(bot.engine.plane, config, bot.notifier, "maindb", "t")).ok
        assert server.hits == 1
        assert "Connection refused" in (await asyncio.to_thread(ping, "http://127.0.0.1:9/", 2))
    finally:
        await server.stop()
