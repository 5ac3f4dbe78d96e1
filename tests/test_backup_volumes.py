"""Backups of apps' named volumes without an engine: the helper service exactly, the command
surface and its permissions through the real dispatcher, and the pipeline (tar through gzip
into moto, verified, listed, restored into a new volume only) on the fake swarm; and the
decisions of a restore into a Redis with appendonly on."""

from __future__ import annotations

import io
import tarfile

import pytest
from pydantic import ValidationError

from commands.catalog.reports import Runner, report_rows
from commands.replies import DENIED, USAGE
from core.config import BackupSchedule, BackupsConfig
from core.data import dumps, redis_aof, volumes
from core.data.backup import BackupError, Located
from core.data.volumes import VolumeRef, helper_spec, parse_key
from core.scheduler.jobs import due_jobs, jobs
from core.swarm.testing import FakeExec, FakeSwarm
from tests import test_backup_schedules as schedules
from tests.chat import failure, result, say, steps, table
from tests.test_backup_schedules import ADMIN, at, posted

plane = schedules.plane  # moto (conftest), the fake swarm, the dispatcher
SHOP = VolumeRef("shop", "production", "data")


def test_names_and_keys():
    assert (SHOP.key, SHOP.engine_name) == ("shop/production/data", "shop-production-data")
    assert parse_key("shop/production/data") == SHOP
    assert parse_key("maindb") is None and parse_key("shop/production") is None
    assert parse_key("shop/production/../x") is None and parse_key("Shop/production/d") is None


def test_the_helper_service_exactly():
    assert helper_spec("h1", "busybox:1", "shop-production-data", read_only=True, node="n1") == {
        "Name": "h1",
        "Labels": {"shipbot.volume.helper": "shop-production-data", "shipbot.managed": "true"},
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": "busybox:1",
                "Command": ["sleep", "3600"],
                "Labels": {"shipbot.volume.helper": "shop-production-data"},
                "Mounts": [
                    {
                        "Type": "volume",
                        "Source": "shop-production-data",
                        "Target": "/volume",
                        "ReadOnly": True,
                    }
                ],
            },
            "RestartPolicy": {"Condition": "none", "MaxAttempts": 0},
            "Placement": {"Constraints": ["node.id==n1"]},
        },
        "Mode": {"Replicated": {"Replicas": 1}},
        "UpdateConfig": {"Parallelism": 1, "Order": "stop-first", "FailureAction": "pause"},
        "RollbackConfig": {"Parallelism": 1, "Order": "stop-first", "FailureAction": "pause"},
        "EndpointSpec": {"Mode": "dnsrr"},
    }
    unplaced = helper_spec("h2", "b", "v", read_only=False, node=None)
    assert "Placement" not in unplaced["TaskTemplate"]
    assert unplaced["TaskTemplate"]["ContainerSpec"]["Mounts"][0]["ReadOnly"] is False


def test_tar_commands_and_file_counts():
    target = dumps.target_from_env("volume", {}, "/volume")
    assert dumps.dump(target).argv == ("tar", "-C", "/volume", "-cf", "-", ".")
    assert dumps.restore(target).argv == ("tar", "-C", "/volume", "-xf", "-")
    assert dumps.counts(target).argv == ("find", "/volume", "-type", "f")
    assert dumps.parse_counts("volume", "/volume/a\n/volume/b/c\n\n") == {"files": 2}


def a_tar() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, body in (("a.txt", b"hello\n" * 3000), ("sub/b.bin", bytes(range(256)) * 64)):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return out.getvalue()


def shop_service(swarm) -> list[dict]:
    """The app's service mounting its volume; returns the specs of services made after."""
    swarm.create_service(
        {
            "Name": "shop-production",
            "Labels": {"shipbot.app": "shop", "shipbot.env": "production"},
            "TaskTemplate": {
                "ContainerSpec": {
                    "Image": "busybox:latest",
                    "Mounts": [
                        {"Type": "volume", "Source": "shop-production-data", "Target": "/data"}
                    ],
                }
            },
            "Mode": {"Replicated": {"Replicas": 1}},
        }
    )
    created: list[dict] = []
    make = swarm.create_service
    swarm.create_service = lambda spec: (created.append(spec), make(spec))[1]
    return created


def tar_tools(swarm, archive: bytes, received: list[bytes]) -> None:
    def handler(container, argv, env):
        if argv[:2] == ("tar", "-C") and argv[3] == "-cf":
            return FakeExec([archive[i : i + 8192] for i in range(0, len(archive), 8192)])
        if argv[:2] == ("tar", "-C") and argv[3] == "-xf":
            exec_ = FakeExec()
            received.append(exec_.stdin)
            return exec_
        if argv[0] == "find":
            return FakeExec([b"/volume/a.txt\n/volume/sub/b.bin\n"])
        return FakeExec(code=127, err=f"{argv[0]}: not found")

    swarm.exec_handler = handler


async def test_back_up_list_and_restore_into_a_new_volume(plane):
    bot, swarm = plane
    swarm.add_image("busybox:latest")
    helpers = shop_service(swarm)
    archive, received = a_tar(), []
    tar_tools(swarm, archive, received)
    replies = await say(bot, "volume backup shop data", ADMIN)
    done = result(replies)
    assert done.ok, done
    assert steps(replies)[0] == "backing up volume shop-production-data of shop (production)"
    (row,) = bot.engine.store.good_backups("shop/production/data")
    assert row["kind"] == "volume" and row["raw_size"] == len(archive)
    assert row["key"].startswith("backups/volumes/shop/production/data/")
    assert row["key"].endswith(".tar.gz")
    # the helper mounted the volume read-only, ran tar, and is gone
    (made,) = helpers
    (mount,) = made["TaskTemplate"]["ContainerSpec"]["Mounts"]
    assert (mount["Source"], mount["ReadOnly"]) == ("shop-production-data", True)
    assert swarm.inspect_service(made["Name"]) is None
    listed = table(await say(bot, "volume backups shop data", ADMIN))
    assert listed.rows[0][:2] == (str(row["id"]), "ok")
    restored = result(await say(bot, f"volume restore shop data {row['id']} --to data-copy", ADMIN))
    assert restored.title == (
        f"backup {row['id']} of volume data restored into shop-production-data-copy"
    )
    assert restored.details[0] == "files: 2"
    assert [bytes(b) for b in received] == [archive]  # gunzipped, exactly what tar gave
    assert swarm.inspect_volume("shop-production-data-copy") is not None
    (mount,) = helpers[1]["TaskTemplate"]["ContainerSpec"]["Mounts"]
    assert (mount["Source"], mount["ReadOnly"]) == ("shop-production-data-copy", False)
    assert swarm.inspect_service(helpers[1]["Name"]) is None
    again = failure(await say(bot, f"volume restore shop data {row['id']} --to data-copy", ADMIN))
    assert "exists already" in again.message  # never over a volume that exists
    live = failure(await say(bot, f"volume restore shop data {row['id']} --to data", ADMIN))
    assert live.message == (
        "the volume shop-production-data exists already: restore into a new one (--to)"
    )
    assert len(helpers) == 2 and received == [archive]  # no helper, nothing written


async def test_a_volume_the_app_does_not_mount_is_refused(plane):
    bot, swarm = plane
    swarm.add_image("busybox:latest")
    shop_service(swarm)
    bad = result(await say(bot, "volume backup shop cache", ADMIN))
    assert not bad.ok and "shop (production) mounts no named volume 'cache'" in bad.details[0]
    none = result(await say(bot, "volume backup blog data", ADMIN))
    assert not none.ok and "blog has no service in production" in none.details[0]
    # app shop in environment a-b is not app shop-a in environment b (both "shop-a-b")
    swarm.create_service(
        {
            "Name": "shop-a-b",
            "Labels": {"shipbot.app": "shop-a", "shipbot.env": "b"},
            "TaskTemplate": {
                "ContainerSpec": {
                    "Image": "busybox:latest",
                    "Mounts": [{"Type": "volume", "Source": "shop-a-b-c", "Target": "/c"}],
                }
            },
            "Mode": {"Replicated": {"Replicas": 1}},
        }
    )
    other = result(await say(bot, "volume backup shop c --env a-b", ADMIN))
    assert not other.ok and "shop has no service in a-b (shop-a-b)" in other.details[0]
    usage = failure(await say(bot, "volume restore shop data 1", ADMIN))
    assert usage.kind == USAGE and "--to NEW_VOLUME" in usage.message
    usage = failure(await say(bot, "volume backup shop ../etc", ADMIN))
    assert usage.kind == USAGE


async def test_permissions_follow_the_app_and_environment(plane):
    bot, swarm = plane
    swarm.add_image("busybox:latest")
    shop_service(swarm)
    tar_tools(swarm, a_tar(), [])
    for grant in ("console:dev deployer --app shop", "console:ops admin --app blog"):
        assert result(await say(bot, f"grant {grant}", ADMIN)).ok
    assert result(await say(bot, "volume backup shop data", "console:dev")).ok
    (row,) = bot.engine.store.good_backups("shop/production/data")
    assert table(await say(bot, "volume backups shop data", "console:dev")).rows
    denied = failure(await say(bot, "volume backup shop data", "console:ops"))
    assert denied.kind == DENIED  # an admin of blog reads nothing of shop
    restore = f"volume restore shop data {row['id']} --to copy"
    assert failure(await say(bot, restore, "console:dev")).kind == DENIED  # writing: admins
    # a backup of shop's volume cannot be restored under another app's name
    other = failure(await say(bot, f"volume restore blog data {row['id']} --to x", ADMIN))
    assert other.message.startswith(f"volume data of blog (production) has no backup {row['id']}")


def test_restore_volume_refuses_an_existing_volume_before_any_helper(plane):
    _, swarm = plane
    shop_service(swarm)
    try:
        volumes.restore_volume(swarm, None, None, {}, SHOP, None, "p")  # type: ignore[arg-type]
    except volumes.BackupError as exc:
        assert "shop-production-data exists already" in str(exc)
    else:
        raise AssertionError("restored over an existing volume")
    assert [s["Spec"]["Name"] for s in swarm.services()] == ["shop-production"]


async def test_a_scheduled_volume_backup_runs_and_posts(plane):
    bot, swarm = plane
    swarm.add_image("busybox:latest")
    shop_service(swarm)
    tar_tools(swarm, a_tar(), [])
    settings = bot.config.backups.model_copy(
        update={"schedules": {"shop/production/data": BackupSchedule(cron="0 4 * * *")}}
    )
    config = bot.config.model_copy(update={"backups": settings})
    (job,) = due_jobs(jobs(settings), at("2026-11-23 03:59"), at("2026-11-23 04:00:01"))
    done = await Runner(bot.engine.plane, config, bot.notifier)(job)
    assert done.ok, done
    (row,) = bot.engine.store.good_backups("shop/production/data")
    assert row["started_by"] == "schedule"
    assert any(f"backup {row['id']} of shop/production/data is stored" in p for p in posted(bot))
    (line,) = [r for r in report_rows(bot.engine.store, settings, 1e10) if r[0] == SHOP.key]
    assert line[1] == "0 4 * * *" and line[4] == "0"


# restoring into a Redis with appendonly on (core/data/redis_aof.py): builders exactly, then
# the decisions on the fake swarm; the real engine: tests/test_backups_more_docker.py
REDIS = dumps.Target("redis", password="pw")
AOF_ON = b"# Persistence\r\naof_enabled:1\r\nrdb_bgsave_in_progress:0\r\n"


def test_aof_builders_exactly():
    layout = redis_aof.AofLayout("/data", "appendonlydir", "appendonly.aof")
    assert redis_aof.install(REDIS, layout) == dumps.Exec(
        ("sh", "-c", redis_aof.INSTALL, "sh", "/data", "appendonlydir", "appendonly.aof",
         "/data/dump.rdb"),
        {"REDISCLI_AUTH": "pw"},
    )  # fmt: skip
    assert redis_aof.stop_aof(REDIS).argv == ("redis-cli", "CONFIG", "SET", "appendonly", "no")
    assert redis_aof.parse_config("dir\n/data\nappenddirname\nappendonlydir\n") == {
        "dir": "/data",
        "appenddirname": "appendonlydir",
    }


def redis_answers(swarm, persistence: bytes, config: dict[str, str]) -> list[tuple]:
    def handler(container, argv, env):
        if argv[1:3] == ("INFO", "persistence"):
            return FakeExec([persistence])
        if argv[1:3] == ("CONFIG", "GET"):
            value = config.get(argv[3])
            return FakeExec([f"{argv[3]}\n{value}\n".encode()] if value is not None else [])
        if argv[1:3] == ("CONFIG", "SET"):
            return FakeExec([b"OK\n"])
        return FakeExec(code=127, err=f"{argv[0]}: not found")

    swarm.exec_handler = handler
    return swarm.execs


def test_aof_off_changes_nothing_and_redis_6_with_aof_is_refused():
    swarm = FakeSwarm()
    into = Located("cache", "redis", "c1", REDIS)
    execs = redis_answers(swarm, b"aof_enabled:0\r\n", {})
    assert redis_aof.prepare(swarm, into) is None
    assert [e[1][1:3] for e in execs] == [("INFO", "persistence")]
    redis_answers(swarm, AOF_ON, {"dir": "/data", "appendfilename": "appendonly.aof"})
    with pytest.raises(BackupError, match="before 7"):
        redis_aof.prepare(swarm, into)
    config = {"dir": "/srv", "appenddirname": "aofs", "appendfilename": "a.aof"}
    execs = redis_answers(swarm, AOF_ON, config)
    assert redis_aof.prepare(swarm, into) == redis_aof.AofLayout("/srv", "aofs", "a.aof")
    assert execs[-1][1] == ("redis-cli", "CONFIG", "SET", "appendonly", "no")


def test_volume_schedules_in_shipbot_yml():
    s3 = {"bucket": "backups"}
    fine = BackupsConfig(s3=s3, schedules={"shop/production/data": "0 3 * * *"})
    assert parse_key(next(iter(fine.schedules))) == SHOP
    with pytest.raises(ValidationError, match="a volume is scheduled as APP/ENV/VOLUME"):
        BackupsConfig(s3=s3, schedules={"shop/data": "0 3 * * *"})
    with pytest.raises(ValidationError, match="verify and query are for databases"):
        BackupsConfig(
            s3=s3, schedules={"shop/production/data": {"cron": "0 3 * * *", "verify": "0 4 * * *"}}
        )
