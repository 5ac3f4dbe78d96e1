"""Backups without a Docker engine: exact builders, the verdict, and the whole pipeline
with a fake exec stream into moto on loopback (uploads, retention, every failure)."""

from __future__ import annotations

import gzip
import hashlib
import json
import uuid

import pytest
from pyrage import x25519

from commands.catalog.backups import report_result
from commands.notify import Notifier
from core.config import BackupsConfig, NotifyRoute, RetentionConfig
from core.data import dumps, stream
from core.data.backup import Located, run_backup, verdict
from core.data.s3 import S3Store, Sent, Stored, _parts, part_size
from core.store import Store
from core.swarm.testing import FakeExec, FakeSwarm
from tests.moto_s3 import KEYS, make_bucket, moto_server, s3_config

PG = dumps.Target("postgres", "app", "appdb", "pw")
MY = dumps.Target("mariadb", "app", "appdb", "pw")
PG_DUMP = b"PGDMP" + bytes(range(256)) * 400


# builders: exact argv and environment
def test_postgres_commands():
    assert dumps.dump(PG) == dumps.Exec(
        ("pg_dump", "-Fc", "--no-password", "-U", "app", "-d", "appdb"), {"PGPASSWORD": "pw"}
    )
    assert dumps.restore(PG).argv == (
        "pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "-U", "app", "-d", "appdb"
    )  # fmt: skip
    assert dumps.restore(PG, over=True).argv == (
        "pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "--clean", "--if-exists",
        "-U", "app", "-d", "appdb",
    )  # fmt: skip
    assert dumps.restore(MY, over=True) == dumps.restore(MY)  # the dump drops each table
    assert dumps.counts(PG).argv[:8] == (
        "psql", "--no-password", "-U", "app", "-d", "appdb", "-At", "-F"
    )  # fmt: skip


def test_mariadb_and_mysql_commands():
    argv = ("mariadb-dump", "--single-transaction", "--quick", "--no-tablespaces")
    assert dumps.dump(MY) == dumps.Exec((*argv, "-u", "app", "appdb"), {"MYSQL_PWD": "pw"})
    mysql = dumps.Target("mysql", "app", "appdb")
    assert dumps.dump(mysql).argv[0] == "mysqldump"
    assert dumps.dump(mysql).env == {}
    assert dumps.restore(MY) == dumps.Exec(("mariadb", "-u", "app", "appdb"), {"MYSQL_PWD": "pw"})
    assert dumps.counts(MY, ["a", "we`ird'"]).argv[6] == (
        "SELECT 'a', COUNT(*) FROM `a` UNION ALL SELECT 'we`ird''', COUNT(*) FROM `we``ird'`"
    )


def test_redis_and_volume_commands():
    redis = dumps.Target("redis", password="s3cret")
    assert dumps.redis_bgsave(redis) == dumps.Exec(
        ("redis-cli", "BGSAVE"), {"REDISCLI_AUTH": "s3cret"}
    )
    assert dumps.dump(redis) == dumps.Exec(("cat", "/data/dump.rdb"))
    assert dumps.restore(redis).argv == ("dd", "of=/data/dump.rdb", "bs=1M", "status=none")
    volume = dumps.Target("volume", path="/srv/data")
    assert dumps.dump(volume).argv == ("tar", "-C", "/srv/data", "-cf", "-", ".")
    assert dumps.restore(volume).argv == ("tar", "-C", "/srv/data", "-xf", "-")


def test_targets_from_the_official_images_environment():
    env = {"POSTGRES_USER": "u", "POSTGRES_PASSWORD": "p"}
    assert dumps.target_from_env("postgres", env) == dumps.Target("postgres", "u", "u", "p")
    env = {"MARIADB_DATABASE": "d", "MARIADB_ROOT_PASSWORD": "r"}
    assert dumps.target_from_env("mariadb", env) == dumps.Target("mariadb", "root", "d", "r")
    assert dumps.target_from_env("redis", {"REDISCLI_AUTH": "x"}).password == "x"
    with pytest.raises(dumps.DumpError, match="names no database"):
        dumps.target_from_env("mysql", {"MYSQL_USER": "u"})
    assert "pw" not in repr(PG)


def test_parsers():
    assert dumps.parse_counts("postgres", "public.a|3\npublic.b|0\n") == {
        "public.a": 3,
        "public.b": 0,
    }
    assert dumps.parse_counts("mariadb", "a\t2\n") == {"a": 2}
    info = "# Keyspace\r\ndb0:keys=5,expires=0,avg_ttl=0\r\n"
    assert dumps.parse_counts("redis", info) == {"db0": 5}
    assert dumps.parse_info("# P\r\nrdb_bgsave_in_progress:0\r\n") == {
        "rdb_bgsave_in_progress": "0"
    }
    assert dumps.complete("mariadb", b"--", b"x\n-- Dump completed on 2026-11-23\n")
    assert not dumps.complete("mariadb", b"--", b"INSERT INTO")
    assert dumps.complete("redis", b"REDIS0011", b"\xff" + b"12345678")


# the verdict
CONFIG = BackupsConfig(s3={"bucket": "unused"}, min_bytes=100)
SENT = Sent(1000, "ab" * 32, "e-1")


@pytest.mark.parametrize(
    ("code", "complete", "stored", "last", "why"),
    [
        (0, True, Stored(1000, "e-1"), 1500, None),
        (2, True, Stored(1000, "e-1"), None, "the dump tool exited 2: boom"),
        (None, True, Stored(1000, "e-1"), None, "truncated"),
        (0, False, Stored(1000, "e-1"), None, "incomplete"),
        (0, True, Stored(999, "e-1"), None, "S3 holds 999 bytes but 1000 were sent"),
        (0, True, Stored(1000, "x-1"), None, "checksum"),
        (0, True, Stored(1000, "e-1"), 2001, "less than 50% of the last good backup (2001"),
    ],
)
def test_verdict(code, complete, stored, last, why):
    problems = verdict("postgres", code, "boom", complete, SENT, stored, last, CONFIG)
    assert (why is None and problems == []) or any(why in p for p in problems)


def test_floor():
    problems = verdict(
        "postgres", 0, "", True, Sent(20, "", "e-1"), Stored(20, "e-1"), None, CONFIG
    )
    assert problems == ["only 20 bytes: below the floor of 100"]


def test_parts_are_whole_buffers_of_at_least_the_part_size():
    mib = 1024 * 1024
    assert [part_size(n) for n in (1, 1000, 1001, 2001, 99_999)] == [
        5 * mib, 5 * mib, 10 * mib, 20 * mib, 5 * mib << 10
    ]  # fmt: skip
    chunk = bytes(range(256)) * 1024  # 256 KiB
    parts = list(_parts([chunk] * 41))  # 10.25 MiB
    assert [len(p) for p in parts] == [5 * mib, 5 * mib, mib // 4]
    assert b"".join(parts) == chunk * 41
    assert list(_parts([])) == [bytearray()]  # an empty stream is one empty part


# the pipeline, with a fake exec stream, into moto
@pytest.fixture
def env(monkeypatch):
    for key, value in KEYS.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def bucket(s3_url):
    name = f"bk-{uuid.uuid4().hex[:10]}"
    make_bucket(s3_url, name)
    return name


def setup(tmp_path, s3_url, bucket, **config):
    store = Store(tmp_path / "state.db")
    settings = BackupsConfig(s3=s3_config(s3_url, bucket), min_bytes=100, **config)
    return store, S3Store(settings.s3), settings


def serve(swarm: FakeSwarm, *execs: FakeExec) -> None:
    queue = list(execs)
    swarm.exec_handler = lambda container, argv, env: queue.pop(0)


def chunks_of(data: bytes, size: int = 70_000) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


PGDB = Located("maindb", "postgres", "c0ffee", PG)


def test_a_backup_uploads_verifies_and_posts(tmp_path, s3_url, bucket, env):
    store, s3, settings = setup(tmp_path, s3_url, bucket)
    swarm = FakeSwarm()
    serve(swarm, FakeExec(chunks_of(PG_DUMP)))
    report = run_backup(swarm, store, s3, settings, PGDB, "console:alice")
    assert report.ok, report.problems
    assert swarm.execs == [("c0ffee", dumps.dump(PG).argv, {"PGPASSWORD": "pw"})]
    body = s3.client.get_object(Bucket=bucket, Key=report.key)["Body"].read()
    assert gzip.decompress(body) == PG_DUMP
    assert hashlib.sha256(body).hexdigest() == report.sha256
    row = store.backup(report.id)
    assert (row["status"], row["size"], row["raw_size"]) == ("ok", len(body), len(PG_DUMP))
    assert report.key.startswith("backups/maindb/") and report.key.endswith(".pgdump.gz")
    notifier = Notifier(store, [NotifyRoute(platform="console", channel="ops", kinds=["backups"])])
    assert notifier.publish("backups", "maindb", None, report_result(report)) == 1
    payload = json.loads(store.due_messages("console", 1e12)[0]["payload"])
    assert "backup 1 of maindb is stored" in json.dumps(payload)
    assert f"s3://{bucket}/{report.key}" in json.dumps(payload)


def test_retention_deletes_the_oldest(tmp_path, s3_url, bucket, env):
    store, s3, settings = setup(tmp_path, s3_url, bucket, retention=RetentionConfig(keep_last=2))
    swarm = FakeSwarm()
    serve(swarm, *(FakeExec(chunks_of(PG_DUMP)) for _ in range(3)))
    clock = iter(range(1000, 2000, 10))
    reports = [
        run_backup(swarm, store, s3, settings, PGDB, "t", clock=lambda: float(next(clock)))
        for _ in range(3)
    ]
    assert [r.deleted for r in reports] == [[], [], [reports[0].key]]
    listed = s3.client.list_objects_v2(Bucket=bucket)["Contents"]
    assert sorted(o["Key"] for o in listed) == sorted([reports[1].key, reports[2].key])
    assert store.backup(reports[0].id)["deleted_at"] is not None


def failed(report, store):
    assert not report.ok
    row = store.backup(report.id)
    assert row["status"] == "failed"
    return row["error"]


def test_dump_tool_fails_with_its_stderr_and_nothing_stored(tmp_path, s3_url, bucket, env):
    store, s3, settings = setup(tmp_path, s3_url, bucket)
    swarm = FakeSwarm()
    serve(swarm, FakeExec([b"PGDMP"], code=1, err='pg_dump: error: relation "x" is locked'))
    report = run_backup(swarm, store, s3, settings, PGDB, "t")
    assert 'pg_dump exited 1: pg_dump: error: relation "x" is locked' in failed(report, store)
    assert s3.client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_truncated_stream(tmp_path, s3_url, bucket, env):
    store, s3, settings = setup(tmp_path, s3_url, bucket)
    swarm = FakeSwarm()
    serve(swarm, FakeExec(chunks_of(PG_DUMP, 10_000), broken_after=2))
    assert "exec stream" in failed(run_backup(swarm, store, s3, settings, PGDB, "t"), store)
    serve(swarm, FakeExec(chunks_of(PG_DUMP)[:1], code=None))
    assert "ended before the tool did" in failed(
        run_backup(swarm, store, s3, settings, PGDB, "t"), store
    )
    mysql = Located("mydb", "mariadb", "c1", MY)
    serve(swarm, FakeExec([b"-- MariaDB dump\n", b"INSERT INTO t VALUES (1);\n" * 50]))
    assert "incomplete" in failed(run_backup(swarm, store, s3, settings, mysql, "t"), store)


def test_far_smaller_than_the_last_good_one(tmp_path, s3_url, bucket, env):
    store, s3, settings = setup(tmp_path, s3_url, bucket)
    swarm = FakeSwarm()
    small = b"PGDMP" + bytes(range(256)) * 20
    serve(swarm, FakeExec([PG_DUMP]), FakeExec([small]))
    assert run_backup(swarm, store, s3, settings, PGDB, "t").ok
    small_one = run_backup(swarm, store, s3, settings, PGDB, "t")
    assert not small_one.ok and small_one.suspect  # kept for an admin: tests/test_backups_truth
    row = store.backup(small_one.id)
    assert row["status"] == "suspect" and "less than 50% of the last good backup" in row["error"]


def test_bucket_missing_and_s3_unreachable(tmp_path, s3_url, env):
    store, s3, settings = setup(tmp_path, s3_url, "no-such-bucket")
    swarm = FakeSwarm()
    serve(swarm, FakeExec([PG_DUMP]))
    assert "bucket no-such-bucket does not exist" in failed(
        run_backup(swarm, store, s3, settings, PGDB, "t"), store
    )
    store, s3, settings = setup(tmp_path / "b", "http://127.0.0.1:9", "some-bucket")
    serve(swarm, FakeExec([PG_DUMP]))
    assert "cannot be reached" in failed(run_backup(swarm, store, s3, settings, PGDB, "t"), store)


def test_wrong_credentials(tmp_path, env):
    with moto_server(INITIAL_NO_AUTH_ACTION_COUNT="0") as url:
        store, s3, settings = setup(tmp_path, url, "some-bucket")
        swarm = FakeSwarm()
        serve(swarm, FakeExec([PG_DUMP]))
        error = failed(run_backup(swarm, store, s3, settings, PGDB, "t"), store)
    assert "refused the credentials" in error and "TEST_S3_ACCESS" in error
    assert KEYS["TEST_S3_SECRET"] not in error


def test_encrypted_backup_round_trip(tmp_path, s3_url, bucket, env):
    identity = x25519.Identity.generate()
    store, s3, settings = setup(
        tmp_path, s3_url, bucket, age_recipients=[str(identity.to_public())]
    )
    swarm = FakeSwarm()
    serve(swarm, FakeExec(chunks_of(PG_DUMP)))
    report = run_backup(swarm, store, s3, settings, PGDB, "t")
    assert report.ok and report.key.endswith(".pgdump.gz.age")
    row = store.backup(report.id)
    back = stream.Digest(s3.download(report.key), row["sha256"])
    plain = stream.gunzip_chunks(stream.decrypt_chunks(back, str(identity)))
    assert b"".join(plain) == PG_DUMP


def test_a_changed_object_fails_its_checksum(tmp_path, s3_url, bucket, env):
    store, s3, settings = setup(tmp_path, s3_url, bucket)
    s3.client.put_object(Bucket=bucket, Key="k", Body=b"tampered")
    with pytest.raises(stream.StreamError, match="changed since the backup"):
        stream.drain(stream.Digest(s3.download("k"), "00" * 32))
