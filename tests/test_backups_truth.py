"""Backups that tell the whole truth (issue 21, item 7), without a Docker engine: the real
dispatcher on the fake swarm, moto on loopback as S3, and the plane's clock injected.

A suspect backup is kept for ``backup accept``; retention cleans up failed and suspect
objects; a run that started and failed is no missed run; a verify waits for the database's
backup; rows say where their object is; a restore checks everything before it creates; a
database with no running task is ``down``."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import re
import threading
from pathlib import Path

import pytest
import yaml
from pyrage import x25519

from commands.catalog import reports
from commands.catalog.reports import Runner, guarded_backup, verify_and_post
from commands.catalog.words import tasks_word
from commands.replies import Message
from core.config import BackupsConfig
from core.data.s3 import S3Store
from core.scheduler.jobs import due_jobs, fire_times, jobs, last_fire
from core.watch.backups import BackupWatch
from tests.chat import failure, result, say, table
from tests.clock import ManualClock
from tests.moto_s3 import make_bucket, s3_config
from tests.test_backup_schedules import (  # noqa: F401 (fixtures)
    ADMIN,
    PG_DUMP,
    create_db,
    plane,
    posted,
    tools,
)

UTC = dt.UTC
NOISE = random.Random(21)  # noqa: S311 (test data, not secrets)
BIG = b"PGDMP" + NOISE.randbytes(60_000)  # gzip leaves noise as big as it is
SMALL = b"PGDMP" + NOISE.randbytes(6_000)  # a tenth of BIG, still above the floor


def objects(bot) -> set[str]:
    s3 = S3Store(bot.config.backups.s3)
    try:
        listed = s3.client.list_objects_v2(Bucket=bot.config.backups.s3.bucket)
    finally:
        s3.close()
    return {o["Key"] for o in listed.get("Contents", [])}


async def backup(bot, dump: bytes, user: str = ADMIN):
    tools(bot.swarm, dump=dump)
    return await guarded_backup(bot.engine.plane, bot.config, bot.notifier, "maindb", user)


@pytest.fixture
def bot(plane):  # noqa: F811 (the fixture imported above)
    dispatcher, swarm = plane
    dispatcher.swarm = swarm
    return dispatcher


# a suspect backup: kept, accepted by an admin as the new baseline
async def test_a_suspect_backup_is_kept_and_an_admin_accepts_it_as_the_baseline(bot):
    await create_db(bot, bot.swarm)
    assert (await backup(bot, BIG)).ok
    small = await backup(bot, SMALL)  # a large table was dropped on purpose
    assert not small.ok
    assert small.title == "backup 2 of maindb is suspect: kept, not counted as good"
    assert small.details[-1].endswith("`backup accept maindb 2`")
    row = bot.engine.store.backup(2)
    assert row["status"] == "suspect" and row["key"] in objects(bot)
    listed = table(await say(bot, "backup list maindb", ADMIN))
    assert [r[:2] for r in listed.rows] == [("2", "suspect"), ("1", "ok")]
    assert not (await backup(bot, SMALL)).ok  # still compared with the big one
    assert bot.engine.store.backup(3)["status"] == "suspect"

    wrong = failure(await say(bot, "backup accept maindb 1", ADMIN))
    assert wrong.message == (
        "backup 1 of maindb is ok, not suspect: only a suspect backup is accepted "
        "(`backup list maindb` shows which are)"
    )
    assert "no backup 9" in failure(await say(bot, "backup accept maindb 9", ADMIN)).message
    denied = failure(await say(bot, "backup accept maindb 3", "console:mallory"))
    assert denied.kind == "denied" and bot.engine.store.backup(3)["status"] == "suspect"
    done = result(await say(bot, "backup accept maindb 3", ADMIN))
    assert done.ok and done.title.startswith("backup 3 of maindb accepted")
    row = bot.engine.store.backup(3)
    assert (row["status"], row["accepted_by"]) == ("ok", ADMIN)
    accepts = [a for a in bot.engine.store.audit_log() if "backup accept" in a["command"]]
    assert [(a["user"], a["command"]) for a in accepts if a["user"] == ADMIN] == [
        (ADMIN, "backup accept maindb 3"),  # the refused ones are audited too
        (ADMIN, "backup accept maindb 9"),
        (ADMIN, "backup accept maindb 1"),
    ]
    assert (await backup(bot, SMALL)).ok  # compared with the accepted one now
    assert bot.engine.store.backup(4)["status"] == "ok"


async def test_retention_deletes_failed_and_suspect_objects(bot):
    await create_db(bot, bot.swarm)
    assert (await backup(bot, BIG)).ok  # 1
    assert not (await backup(bot, b"PGDMP tiny")).ok  # 2: below the floor, failed, stored
    assert not (await backup(bot, SMALL)).ok  # 3: suspect
    assert not (await backup(bot, SMALL)).ok  # 4: suspect
    store = bot.engine.store
    keys = {i: store.backup(i)["key"] for i in (1, 2, 3, 4)}
    assert store.backup(2)["status"] == "failed" and keys[2] in objects(bot)
    done = result(await say(bot, "backup accept maindb 4", ADMIN))
    assert done.details[0] == f"retention deleted 2: {keys[2]}, {keys[3]}"
    assert objects(bot) == {keys[1], keys[4]}
    assert [store.backup(i)["deleted_at"] is not None for i in (1, 2, 3, 4)] == [
        False, True, True, False
    ]  # fmt: skip
    assert (await backup(bot, BIG)).ok  # 5, and nothing older left to clean
    assert objects(bot) == {keys[1], keys[4], store.backup(5)["key"]}


# a run that started and failed is no missed run
async def test_a_scheduled_run_that_failed_is_recorded_and_never_called_missed(bot):
    fire = last_fire("0 3 * * *", dt.datetime.now(UTC) - dt.timedelta(days=1))
    clock = ManualClock.at(fire + dt.timedelta(seconds=2), auto=True)
    bot.engine.plane.clock = clock
    watch_clock = ManualClock.at(fire - dt.timedelta(hours=1))

    def publish(post):
        bot.notifier.publish("backups", post.database, None, Message(post.text))

    watch = BackupWatch(bot.engine.store, bot.config.backups, publish, clock=watch_clock)
    assert await watch.check() == []
    (job,) = due_jobs(jobs(bot.config.backups), fire - dt.timedelta(minutes=1), fire)
    done = await Runner(bot.engine.plane, bot.config, bot.notifier)(job)  # no such database
    stamp = fire.strftime("%Y-%m-%d %H:%M UTC")
    assert done.title == f"backup 1 of maindb started {stamp} and failed"
    assert done.details == ("why: there is no database maindb (no service db-maindb)",)
    row = bot.engine.store.backup(1)
    assert (row["status"], row["started_by"], row["started_at"]) == (
        "failed", "schedule", clock.time()
    )  # fmt: skip
    watch_clock.advance_to(fire + dt.timedelta(minutes=30))
    assert await watch.check() == []  # it started: not "never started"
    watch_clock.advance_to(
        fire + dt.timedelta(days=1, hours=2)
    )  # the next run was missed, for real
    missed, stale = await watch.check()
    assert "never started" in missed.text
    assert stale.text.endswith(
        f"; the newest run, backup 1 at {stamp}, was failed: there is no database maindb "
        "(no service db-maindb); `backup list maindb` shows why"
    )
    assert any(f"backup 1 of maindb started {stamp} and failed" in p for p in posted(bot))


# a verify meets the database's backup: it waits, never drops
def readme_backups() -> BackupsConfig:
    text = (Path(__file__).parent.parent / "README.md").read_text()
    block = re.search(r"```yaml\n(backups:\n.*?)```", text, re.S)
    assert block is not None
    return BackupsConfig(**yaml.safe_load(block.group(1))["backups"])


def test_the_readme_schedule_runs_backup_and_verify_in_the_same_minute_every_sunday():
    settings = readme_backups()
    cache = settings.schedules["cache"]
    start, end = dt.datetime(2026, 12, 1, tzinfo=UTC), dt.datetime(2027, 1, 1, tzinfo=UTC)
    verifies = list(fire_times(cache.verify, start, end))
    assert [v.weekday() for v in verifies] == [6] * 4
    backups = set(fire_times(cache.cron, start, end))
    assert all(v in backups for v in verifies)  # every verify meets a backup
    sunday = verifies[0]
    due = due_jobs(jobs(settings), sunday - dt.timedelta(seconds=30), sunday)
    assert {j.id for j in due} == {"backup/cache", "verify/cache"}


async def test_a_verify_due_with_the_backup_waits_for_it_and_posts(bot):
    schedules = {"maindb": {"cron": "0 * * * *", "verify": "0 4 * * 0"}}
    settings = bot.config.backups.model_copy(
        update={"schedules": BackupsConfig(s3=bot.config.backups.s3, schedules=schedules).schedules}
    )
    bot.config = bot.config.model_copy(update={"backups": settings})
    clock = ManualClock.at(dt.datetime(2026, 12, 6, 4, 0, tzinfo=UTC), auto=True)
    bot.engine.plane.clock = clock
    await create_db(bot, bot.swarm)
    assert (await backup(bot, BIG)).ok  # one good backup to verify
    gate = threading.Event()
    entered = tools(bot.swarm, dump=BIG, gate=gate)
    due = due_jobs(jobs(settings), clock.now() - dt.timedelta(seconds=30), clock.now())
    assert [j.id for j in due] == ["backup/maindb", "verify/maindb"]
    run = Runner(bot.engine.plane, bot.config, bot.notifier)
    backing = asyncio.create_task(run(due[0]))
    assert await asyncio.to_thread(entered.wait, 10)
    verifying = asyncio.create_task(run(due[1]))
    for _ in range(500):  # a deadline: 500 × 0.01 s
        if len(clock.slept) >= 2:
            break
        await asyncio.sleep(0.01)
    assert len(clock.slept) >= 2 and not verifying.done()  # waiting, not dropped
    gate.set()
    assert (await backing).ok
    verified = await asyncio.wait_for(verifying, 30)
    assert verified.ok and verified.title == "backup of maindb verified"
    assert verified.details[0] == "backup 2 restored: 2 tables, 5 rows"
    assert [v["backup_id"] for v in bot.engine.store.verifies("maindb")] == [2]
    assert sum("backup of maindb verified" in p for p in posted(bot)) == 1


async def test_a_verify_that_waits_past_its_bound_posts_and_logs_why(bot, caplog):
    clock = ManualClock.at(dt.datetime(2026, 12, 6, 4, 0, tzinfo=UTC), auto=True)
    bot.engine.plane.clock = clock
    store = bot.engine.store
    assert store.acquire_lock("db/maindb", owner="other", what="backup", ttl=60, host="h") is None
    with caplog.at_level(logging.INFO, logger="shipbot.backups"):
        done = await verify_and_post(
            bot.engine.plane, bot.config, bot.notifier, "maindb", "schedule", wait=60
        )
    assert done.title == "verify of maindb did not run"
    assert done.details[0].startswith("why: maindb is busy: backup by other since ")
    assert done.details[0].endswith(", still after 1m of waiting")
    assert len(clock.slept) == 60 / reports.VERIFY_POLL_SECONDS
    assert any("verify of maindb did not run" in p for p in posted(bot))
    assert any("verify of maindb not run" in r.getMessage() for r in caplog.records)


# rows say where their object is
async def test_restore_and_verify_read_the_object_where_its_row_says(bot, s3_url):  # noqa: F811
    await create_db(bot, bot.swarm)
    assert (await backup(bot, BIG)).ok
    first = bot.config.backups.s3
    row = bot.engine.store.backup(1)
    assert (row["endpoint"], row["bucket"]) == (first.endpoint, first.bucket)
    moved = f"{first.bucket}-new"
    make_bucket(s3_url, moved)
    settings = bot.config.backups.model_copy(
        update={"s3": s3_config("http://127.0.0.1:9", moved)}  # a new endpoint and bucket
    )
    bot.config = bot.config.model_copy(update={"backups": settings})
    tools(bot.swarm)
    args = (bot.engine.plane, bot.config, bot.notifier, "maindb", ADMIN)
    assert (await verify_and_post(*args)).ok
    await create_db(bot, bot.swarm, "copy")
    restored = result(await say(bot, "restore maindb 1 --to copy --break-glass drill", ADMIN))
    assert restored.ok, restored
    # a row from before v23 names no place: the configured one (here: unreachable)
    bot.engine.store.db["backups"].update(1, {"endpoint": None, "bucket": None})
    old = await verify_and_post(*args)
    assert not old.ok and "cannot be reached" in old.details[0]


# a restore checks everything before it creates anything
async def test_a_restore_checks_identity_room_and_s3_before_creating(bot, monkeypatch):
    identity = x25519.Identity.generate()
    settings = bot.config.backups.model_copy(
        update={"age_recipients": [str(identity.to_public())], "age_identity_env": "MY_AGE"}
    )
    bot.config = bot.config.model_copy(update={"backups": settings})
    await create_db(bot, bot.swarm)
    assert (await backup(bot, BIG)).ok
    monkeypatch.delenv("MY_AGE", raising=False)

    def nothing_made() -> None:
        assert bot.swarm.inspect_service("db-copy") is None
        assert bot.engine.store.database("copy") is None

    said = failure(await say(bot, "restore maindb 1 --to copy", ADMIN)).message
    assert said.startswith("backup 1 is encrypted (age): set MY_AGE to its age identity")
    nothing_made()
    monkeypatch.setenv("MY_AGE", str(identity))
    bot.swarm.usage = {"n1": {"disk_total_kb": 1000.0, "disk_percent": 90.0}}
    said = failure(await say(bot, "restore maindb 1 --to copy", ADMIN)).message
    assert said == (
        "no room: backup 1 needs about 0.2 MB (3× its dump) and no node has that much free in "
        "the engine's data root (the most: 0.1 MB): free some space first"
    )
    nothing_made()
    bot.swarm.usage = {"n1": {"disk_total_kb": 1e9, "disk_percent": 10.0}}
    s3 = S3Store(settings.s3)
    s3.client.delete_object(Bucket=settings.s3.bucket, Key=bot.engine.store.backup(1)["key"])
    s3.close()
    said = failure(await say(bot, "restore maindb 1 --to copy", ADMIN)).message
    assert said.startswith("backup 1 cannot be read from S3: reading back ")
    nothing_made()


# status words
def test_status_words_say_down_for_none_of_n():
    assert tasks_word(0, 1) == "0/1 down"
    assert tasks_word(0, 3, healthchecked=False) == "0/3 down"
    assert tasks_word(2, 3) == "2/3 healthy"
    assert tasks_word(1, 1, healthchecked=False) == "1/1 running"
    assert tasks_word(0, 0) == "0/0 healthy"


async def test_db_list_says_down_for_a_database_with_no_running_task(bot):
    await create_db(bot, bot.swarm)
    assert table(await say(bot, "db list", ADMIN)).rows[0][3] == "1/1 healthy"
    ids = {t["ID"] for t in bot.swarm.tasks("db-maindb")}
    for task in [t for t in bot.swarm._tasks if t["ID"] in ids]:  # its only task ended
        bot.swarm._set_state(task, "failed", "task: non-zero exit (1)")
    assert table(await say(bot, "db list", ADMIN)).rows[0][3] == "0/1 down"
