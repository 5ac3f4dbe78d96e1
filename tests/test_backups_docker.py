"""Backups on the real engine: Postgres, MariaDB and Redis from the images ./dev builds, moto
on loopback as S3, everything through the chat (`db create`, `backup run`, `restore`).

One database of each kind serves the whole module: three backups each (posted to the
channel; retention keeps the last two), a restore into a fresh database with identical
rows (Redis: identical keys and values), then each failure posted with its cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import boto3
import docker.errors
import pytest
import pytest_asyncio

from commands.dispatch import Dispatcher
from commands.replies import Result, decode
from tests.chat import failure, remove_volumes, result, say
from tests.moto_s3 import KEYS, free_port, s3_bucket

pytestmark = [pytest.mark.docker, pytest.mark.asyncio(loop_scope="module")]

ADMIN = "console:alice"
BUCKET = "shipbot-backups"
KINDS = ("postgres", "mariadb", "redis")
VERSIONS = {"postgres": "15", "mariadb": "10.11", "redis": "7"}
SHIPBOT_YML = """\
admins: [console:alice]
data:
  images:
    postgres: "shipbot-test/postgres:{{version}}"
    mariadb: "shipbot-test/mariadb:{{version}}"
    redis: "shipbot-test/redis:{{version}}"
notify:
  - {{platform: console, channel: ops, kinds: [backups]}}
backups:
  s3:
    endpoint: "{endpoint}"
    bucket: {bucket}
    prefix: bk
    access_key_env: TEST_S3_ACCESS
    secret_key_env: TEST_S3_SECRET
    timeout_seconds: 3
  retention: {{keep_last: 2}}
"""
SEED = {
    "postgres": [
        "CREATE TABLE items (id int PRIMARY KEY, name text, at timestamptz)",
        "INSERT INTO items SELECT g, md5(g::text), now() FROM generate_series(1, 5000) g",
        "CREATE TABLE notes (id serial PRIMARY KEY, body text)",
        "INSERT INTO notes (body) VALUES ('it''s'), (E'two\\nlines'), (NULL)",
    ],
    "mariadb": [
        "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(64), at DATETIME)",
        "INSERT INTO items SELECT seq, MD5(seq), NOW() FROM seq_1_to_5000",
        "CREATE TABLE notes (id INT AUTO_INCREMENT PRIMARY KEY, body TEXT)",
        "INSERT INTO notes (body) VALUES ('it''s'), ('two\\nlines'), (NULL)",
    ],
}


# the container's own client as its admin user; the SQL comes in as $0
CLIENTS = {
    "postgres": 'psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -At -c "$0"',
    "mariadb": 'mariadb -uroot -p"$MARIADB_ROOT_PASSWORD" -N -B "$MARIADB_DATABASE" -e "$0"',
}
DUMPS = {  # everything the test wrote, in a stable order
    "postgres": ["SELECT * FROM items ORDER BY id", "SELECT * FROM notes ORDER BY id"],
    "mariadb": ["SELECT * FROM items ORDER BY id", "SELECT * FROM notes ORDER BY id"],
}


def service_container(client: Any, name: str, timeout: float = 60.0) -> Any:
    """The running container of database ``name`` (polled: a restart replaces it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tasks = client.api.tasks(filters={"service": f"db-{name}", "desired-state": "running"})
        for task in tasks:
            if task["Status"]["State"] == "running":
                return client.containers.get(task["Status"]["ContainerStatus"]["ContainerID"])
        time.sleep(0.2)
    raise AssertionError(f"db-{name} has no running container after {timeout:g}s")


def sh(container: Any, argv: list[str], user: str = "") -> str:
    code, output = container.exec_run(argv, user=user)
    text = output.decode(errors="replace")
    assert code == 0, (argv, text)
    return text


def query(client: Any, kind: str, name: str, sql: str) -> str:
    container = service_container(client, name)
    return sh(container, ["sh", "-c", CLIENTS[kind], sql])


def redis(client: Any, name: str, *args: str) -> str:
    return sh(service_container(client, name), ["redis-cli", "--no-auth-warning", *args])


def contents(client: Any, kind: str, name: str) -> str:
    """Everything the test wrote, in a stable order, to compare a restore with."""
    if kind == "redis":
        keys = sorted(redis(client, name, "--scan").split())
        strings = [key for key in keys if key.startswith("k:")]
        values = redis(client, name, "MGET", *strings)
        hashed = redis(client, name, "HGETALL", "profile")
        return json.dumps([keys, values, hashed, redis(client, name, "LRANGE", "queue", "0", "-1")])
    tables = [query(client, kind, name, sql) for sql in DUMPS[kind]]
    return "\n--\n".join(tables)


def seed(client: Any, kind: str, name: str) -> None:
    if kind == "redis":
        for start in range(0, 2000, 500):
            pairs = [arg for i in range(start, start + 500) for arg in (f"k:{i}", f"v{i}" * 10)]
            redis(client, name, "MSET", *pairs)
        redis(client, name, "HSET", "profile", "name", "ada", "langs", "py,c")
        redis(client, name, "RPUSH", "queue", "a", "b", "c")
        return
    for sql in SEED[kind]:
        query(client, kind, name, sql)


def posted(bot: Dispatcher) -> list[Result]:
    """The outbox rows of kind ``backups`` queued for the ops channel, oldest first."""
    rows = bot.engine.store.due_messages("console", 1e12, limit=1000)
    out = []
    for row in rows:
        if row["kind"] == "backups" and row["channel"] == "ops":
            reply = decode(row["payload"])
            assert isinstance(reply, Result)
            out.append(reply)
    return out


@pytest.fixture(scope="module")
def s3_url() -> Iterator[str]:
    with s3_bucket(BUCKET) as url:
        yield url


@pytest.fixture(scope="module")
def names(docker_client) -> Iterator[dict[str, str]]:
    """The module's databases by kind; any `*-copy` made by restores goes too at the end."""
    tag = uuid.uuid4().hex[:6]
    made = {kind: f"bk{kind[:2]}{tag}" for kind in KINDS}
    yield made
    gone = [n for name in made.values() for n in (name, f"{name}-copy")]
    for name in gone:
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.api.remove_service(f"db-{name}")
    remove_volumes(docker_client, [f"db-{name}-data" for name in gone])


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(docker_client, s3_url, names, tmp_path_factory) -> AsyncIterator[Dispatcher]:
    home: Path = tmp_path_factory.mktemp("home")
    (home / "shipbot.yml").write_text(SHIPBOT_YML.format(endpoint=s3_url, bucket=BUCKET))
    dispatcher = Dispatcher.open(home)
    created = await asyncio.gather(
        *(
            say(dispatcher, f"db create {kind} {names[kind]} --version {VERSIONS[kind]}", ADMIN)
            for kind in KINDS
        )
    )
    for replies in created:
        assert result(replies).ok, replies
    await asyncio.gather(
        *(asyncio.to_thread(seed, docker_client, kind, names[kind]) for kind in KINDS)
    )
    yield dispatcher
    dispatcher.close()


def other_bot(bot: Dispatcher, **s3: str) -> Dispatcher:
    """The same engine and store with the backups' S3 settings changed."""
    config = bot.config
    assert config.backups is not None
    changed = config.backups.s3.model_copy(update=s3)
    backups = config.backups.model_copy(update={"s3": changed})
    return Dispatcher(bot.engine, config.model_copy(update={"backups": backups}))


def objects(s3_url: str, prefix: str) -> list[str]:
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=s3_url,
        region_name="us-east-1",
        aws_access_key_id=KEYS["TEST_S3_ACCESS"],
        aws_secret_access_key=KEYS["TEST_S3_SECRET"],
    )
    try:
        listed = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    finally:
        client.close()
    return sorted(item["Key"] for item in listed.get("Contents", []))


@pytest.mark.parametrize("kind", KINDS)
async def test_backups_upload_post_keep_two_and_restore_into_a_new_database(
    bot, docker_client, names, s3_url, kind
):
    name = names[kind]
    before = len(posted(bot))
    results = []
    for _ in range(3):
        done = result(await say(bot, f"backup run {name}", ADMIN))
        assert done.ok, done
        results.append(done)
    # each result went to the channel, with its size and location
    sent = posted(bot)[before:]
    assert [r.title for r in sent] == [r.title for r in results]
    locations = [r.fields["location"] for r in results]
    assert all(loc.startswith(f"s3://{BUCKET}/bk/{name}/") for loc in locations)
    assert not sent[1].details[0].startswith("retention deleted")
    assert sent[2].details[0] == f"retention deleted 1: {locations[0].split('/', 3)[3]}"
    keys = [loc.split("/", 3)[3] for loc in locations]
    assert objects(s3_url, f"bk/{name}/") == sorted(keys[1:])
    rows = bot.engine.store.backups(name)
    assert [r["status"] for r in rows] == ["ok", "ok", "ok"]
    assert rows[2]["deleted_at"] is not None and rows[0]["deleted_at"] is None

    # restore the newest into a database that does not exist yet: made of the same kind
    newest = rows[0]["id"]
    copy = f"{name}-copy"
    restored = result(await say(bot, f"restore {name} {newest} --to {copy}", ADMIN))
    assert restored.ok, restored
    made = await bot.engine.database(copy)
    assert (made.kind, made.version) == (kind, VERSIONS[kind])
    assert contents(docker_client, kind, copy) == contents(docker_client, kind, name)
    if kind == "redis":
        assert "db0: 2002" in restored.details
    else:
        assert "public.items: 5000" in restored.details or "items: 5000" in restored.details
    # a deleted backup is not restored
    refused = failure(await say(bot, f"restore {name} {rows[2]['id']} --to {copy}", ADMIN))
    assert refused.message == f"backup {rows[2]['id']} of {name} is deleted by retention"


def last_failure(bot: Dispatcher, name: str) -> str:
    """The newest failure posted about ``name``: its title and causes, one text."""
    mine = [r for r in posted(bot) if f" of {name} " in f"{r.title} " and not r.ok]
    assert mine, posted(bot)
    return "\n".join((mine[-1].title, *mine[-1].details))


async def test_dump_tool_failures_are_posted_with_their_stderr(bot, docker_client, names):
    pg, my = names["postgres"], names["mariadb"]
    # Postgres: the database is renamed from under it, so pg_dump cannot connect to it
    container = service_container(docker_client, pg)
    rename = ["psql", "-v", "ON_ERROR_STOP=1", "-U", pg, "-d", "postgres", "-c"]
    sh(container, [*rename, f'ALTER DATABASE "{pg}" RENAME TO gone'])
    try:
        replies = await say(bot, f"backup run {pg}", ADMIN)
    finally:
        sh(container, [*rename, f'ALTER DATABASE gone RENAME TO "{pg}"'])
    assert not result(replies).ok
    why = last_failure(bot, pg)
    assert "pg_dump exited 1" in why and f'database "{pg}" does not exist' in why, why
    # MariaDB: a view over a dropped table makes mariadb-dump stop
    broken = "CREATE TABLE t2 (x INT); CREATE VIEW v AS SELECT x FROM t2; DROP TABLE t2"
    query(docker_client, "mariadb", my, broken)
    try:
        replies = await say(bot, f"backup run {my}", ADMIN)
    finally:
        query(docker_client, "mariadb", my, "DROP VIEW v")
    assert not result(replies).ok
    why = last_failure(bot, my)
    assert "mariadb-dump exited 2" in why and "references invalid table" in why, why
    assert [r["status"] for r in bot.engine.store.backups(my)][0] == "failed"


async def test_a_database_that_is_down_is_posted(bot, docker_client, names):
    rd = names["redis"]
    service = docker_client.services.get(f"db-{rd}")
    service.scale(0)
    try:
        deadline = time.monotonic() + 60
        label = f"com.docker.swarm.service.name=db-{rd}"
        while docker_client.api.containers(filters={"label": label}):
            assert time.monotonic() < deadline, "the redis container did not stop"
            await asyncio.sleep(0.2)
        replies = await say(bot, f"backup run {rd}", ADMIN)
    finally:
        service.reload()  # scaling to 0 changed its version
        service.scale(1)
    assert not result(replies).ok
    assert f"database {rd} is down: db-{rd} has no running container" in last_failure(bot, rd)
    service_container(docker_client, rd)
    deadline = time.monotonic() + 60
    while "PONG" not in redis(docker_client, rd, "PING"):  # loading its RDB
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)


async def test_s3_unreachable_and_bucket_missing_are_posted(bot, names, s3_url):
    pg = names["postgres"]
    unreachable = other_bot(bot, endpoint=f"http://127.0.0.1:{free_port()}")
    assert not result(await say(unreachable, f"backup run {pg}", ADMIN)).ok
    assert "cannot be reached" in last_failure(bot, pg)
    missing = other_bot(bot, bucket="no-such-bucket")
    assert not result(await say(missing, f"backup run {pg}", ADMIN)).ok
    assert "the bucket no-such-bucket does not exist" in last_failure(bot, pg)
