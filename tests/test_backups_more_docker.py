"""Backups on the real engine, continued: `backup verify` for each kind, the failures the
engine alone can show (pg_dump killed mid-stream, wrong S3 credentials, a dump far smaller
than the last good one), restore into a Redis with appendonly on, the approval in front of
`restore` over a live database and `db remove`, and an app's named volume backed up as tar
and restored into a new volume with identical files. Moto on loopback as S3, everything
through the chat; every name starts with `zb`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import docker.errors
import docker.types
import pytest
import pytest_asyncio

from commands.dispatch import Dispatcher
from commands.replies import ApprovalRequest
from tests.chat import remove_volumes, result, say
from tests.moto_s3 import KEYS, moto_server, s3_bucket
from tests.test_backups_docker import (
    SHIPBOT_YML,
    contents,
    last_failure,
    other_bot,
    query,
    redis,
    seed,
    service_container,
    sh,
)

pytestmark = [pytest.mark.docker, pytest.mark.asyncio(loop_scope="module")]

ADMIN = "console:alice"
BOB = "console:bob"  # a second admin, who approves
BUCKET = "zb-backups"
KINDS = ("postgres", "mariadb", "redis")
VERSIONS = {"postgres": "15", "mariadb": "10.11", "redis": "7"}
BIG_ROWS = 1_500_000  # ≈ 100 MB of table: pg_dump runs for seconds, long enough to be killed


@pytest.fixture(scope="module")
def s3_url() -> Iterator[str]:
    with s3_bucket(BUCKET) as url:
        yield url


@pytest.fixture(scope="module")
def names(docker_client) -> Iterator[dict[str, str]]:
    tag = uuid.uuid4().hex[:6]
    made = {kind: f"zb{kind[:2]}{tag}" for kind in (*KINDS, "aof", "gone")}
    yield made
    services = [f"db-{name}" for name in made.values()]
    volumes = [f"db-{name}-data" for name in made.values()]
    for service in services:
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.api.remove_service(service)
    remove_volumes(docker_client, volumes)


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
    assert result(await say(dispatcher, f"grant {BOB} admin", ADMIN)).ok
    yield dispatcher
    dispatcher.close()


@pytest.mark.parametrize("kind", KINDS)
async def test_backup_verify_passes_for_each_kind(bot, names, kind):
    name = names[kind]
    assert result(await say(bot, f"backup run {name}", ADMIN)).ok
    verified = result(await say(bot, f"backup verify {name}", ADMIN))
    assert verified.ok, verified
    assert verified.title == f"backup of {name} verified"
    counts = "db0: 2002" if kind == "redis" else "items: 5000"
    assert any(line.endswith(counts) for line in verified.details), verified.details
    (row,) = bot.engine.store.db["backup_verifies"].rows_where("database = ?", [name])
    assert row["ok"] in (1, True)


async def test_wrong_s3_credentials_are_posted(bot, names):
    pg = names["postgres"]
    with moto_server(INITIAL_NO_AUTH_ACTION_COUNT="0") as strict:  # checks the keys it gets
        wrong = other_bot(bot, endpoint=strict)
        assert not result(await say(wrong, f"backup run {pg}", ADMIN)).ok
    why = last_failure(bot, pg)
    assert "refused the credentials (InvalidAccessKeyId)" in why, why
    assert KEYS["TEST_S3_SECRET"] not in why
    assert bot.engine.store.backups(pg)[0]["status"] == "failed"


@pytest.mark.parametrize("kind", ("postgres", "mariadb"))
async def test_restore_over_the_live_database_runs_once_someone_else_approves(
    bot, docker_client, names, kind
):
    name = names[kind]  # before the big table below: its backups would dwarf this one's
    assert result(await say(bot, f"backup run {name}", ADMIN)).ok
    backup_id = bot.engine.store.good_backups(name)[0]["id"]
    before = contents(docker_client, kind, name)
    query(docker_client, kind, name, "DELETE FROM items WHERE id > 100")
    replies = await say(bot, f"restore {name} {backup_id}", ADMIN)
    (request,) = [r for r in replies if isinstance(r, ApprovalRequest)]
    assert contents(docker_client, kind, name) != before  # nothing ran yet
    done = result(await say(bot, f"approve {request.id}", BOB))
    assert done.ok and done.title == f"backup {backup_id} of {name} restored into {name}", done
    assert contents(docker_client, kind, name) == before
    assert any(line.endswith("items: 5000") for line in done.details), done.details


def pg_dump_pid(container: Any) -> int | None:
    found = sh(
        container,
        ["sh", "-c", "for p in /proc/[0-9]*; do grep -qx pg_dump $p/comm 2>/dev/null && "
         "echo ${p#/proc/}; done; true"],
    ).split()  # fmt: skip
    return int(found[0]) if found else None


def kill_mid_stream(container: Any, timeout: float = 60.0) -> int:
    """Wait for pg_dump to have written a few MB to its stdout, then SIGKILL it; how much
    it had written."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = pg_dump_pid(container)
        if pid is not None:
            io = sh(container, ["sh", "-c", f"cat /proc/{pid}/io 2>/dev/null; true"])
            written = dict(line.split(": ") for line in io.splitlines() if ": " in line)
            if int(written.get("wchar", "0")) > 4_000_000:
                sh(container, ["sh", "-c", f"kill -9 {pid}"])
                return int(written["wchar"])
        time.sleep(0.05)
    raise AssertionError("pg_dump never got going")


async def test_a_dump_killed_mid_stream_then_one_far_smaller_are_posted(bot, docker_client, names):
    pg = names["postgres"]
    big = f"INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, {BIG_ROWS}) g"  # noqa: S608
    query(docker_client, "postgres", pg, "CREATE TABLE big (id int, body text)")
    await asyncio.to_thread(query, docker_client, "postgres", pg, big)
    container = service_container(docker_client, pg)
    running = asyncio.create_task(say(bot, f"backup run {pg}", ADMIN))
    written = await asyncio.to_thread(kill_mid_stream, container)
    assert written > 4_000_000
    assert not result(await running).ok
    why = last_failure(bot, pg)
    assert "pg_dump exited 137 (killed by signal 9)" in why, why
    assert "nothing was stored" in why
    # a good backup with the big table, then one without it: far smaller, so failed
    good = result(await say(bot, f"backup run {pg}", ADMIN))
    assert good.ok, good
    last_good = bot.engine.store.good_backups(pg)[0]["size"]
    query(docker_client, "postgres", pg, "DROP TABLE big")
    assert not result(await say(bot, f"backup run {pg}", ADMIN)).ok
    why = last_failure(bot, pg)
    assert f"less than 50% of the last good backup ({last_good} bytes)" in why, why
    assert bot.engine.store.good_backups(pg)[0]["size"] == last_good  # still the last good


async def test_restore_into_a_redis_with_appendonly_on_gives_identical_keys(
    bot, docker_client, names
):
    rd, aof = names["redis"], names["aof"]
    assert result(await say(bot, f"db create redis {aof} --version 7", ADMIN)).ok
    service = docker_client.services.get(f"db-{aof}")
    args = service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Args"]
    service.update(args=[*args, "--appendonly", "yes"])
    deadline = time.monotonic() + 90
    while "aof_enabled:1" not in redis(docker_client, aof, "INFO", "persistence"):
        assert time.monotonic() < deadline, "the redis service did not restart with AOF"
        await asyncio.sleep(0.5)
    redis(docker_client, aof, "SET", "stale", "from-before")
    assert result(await say(bot, f"backup run {rd}", ADMIN)).ok
    newest = bot.engine.store.good_backups(rd)[0]["id"]
    # into a database that exists: a second admin approves it first
    replies = await say(bot, f"restore {rd} {newest} --to {aof}", ADMIN)
    (request,) = [r for r in replies if isinstance(r, ApprovalRequest)]
    assert redis(docker_client, aof, "GET", "stale").strip() == "from-before"
    restored = result(await say(bot, f"approve {request.id}", BOB))
    assert restored.ok, restored
    assert "aof_enabled:1" in redis(docker_client, aof, "INFO", "persistence")
    assert contents(docker_client, "redis", aof) == contents(docker_client, "redis", rd)
    assert redis(docker_client, aof, "EXISTS", "stale").strip() == "0"
    # the AOF holds them now: a restart of the container loads the same keys
    redis(docker_client, aof, "SET", "after", "1")
    service_container(docker_client, aof).restart()
    deadline = time.monotonic() + 60
    while True:
        with contextlib.suppress(AssertionError, docker.errors.APIError):
            if redis(docker_client, aof, "GET", "after").strip() == "1":
                break
        assert time.monotonic() < deadline, "redis did not come back with its AOF"
        await asyncio.sleep(0.5)
    assert len(redis(docker_client, aof, "--scan").split()) == 2002 + 1


async def test_db_remove_waits_for_approval_and_keeps_the_volume(bot, docker_client, names):
    gone = names["gone"]
    assert result(await say(bot, f"db create redis {gone} --version 7", ADMIN)).ok
    replies = await say(bot, f"db remove {gone}", ADMIN)
    (request,) = [r for r in replies if isinstance(r, ApprovalRequest)]
    docker_client.services.get(f"db-{gone}")  # still there
    done = result(await say(bot, f"approve {request.id}", BOB))
    assert done.title == f"database {gone} removed; its data stays on volume db-{gone}-data"
    with pytest.raises(docker.errors.NotFound):
        docker_client.services.get(f"db-{gone}")
    docker_client.volumes.get(f"db-{gone}-data")


# an app's named volume
@pytest.fixture
def app_volume(docker_client) -> Iterator[str]:
    """An app's service (as a deploy makes it: APP-ENV, mounting APP-ENV-data at /data)."""
    app = f"zbvol{uuid.uuid4().hex[:6]}"
    service = docker_client.services.create(
        "busybox:latest",
        ["sleep", "3600"],
        name=f"{app}-production",
        labels={"shipbot.app": app, "shipbot.env": "production"},
        mounts=[docker.types.Mount("/data", f"{app}-production-data", type="volume")],
    )
    try:
        yield app
    finally:
        service.remove()
        remove_volumes(docker_client, [f"{app}-production-data", f"{app}-production-data-copy"])


def app_container(client: Any, service: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for task in client.api.tasks(filters={"service": service, "desired-state": "running"}):
            if task["Status"]["State"] == "running":
                return client.containers.get(task["Status"]["ContainerStatus"]["ContainerID"])
        time.sleep(0.2)
    raise AssertionError(f"{service} has no running container")


LISTING = (
    "cd /v && find . | sort | while read f; do "
    'if [ -L "$f" ]; then echo "$f link $(readlink "$f")"; '
    'elif [ -f "$f" ]; then echo "$f $(stat -c %a:%u:%s "$f") $(sha256sum < "$f")"; '
    'else echo "$f dir $(stat -c %a "$f")"; fi; done'
)


def listing(client: Any, volume: str) -> str:
    """Every file, folder and link of ``volume`` with modes, owners and checksums."""
    out = client.containers.run(
        "busybox:latest",
        ["sh", "-c", LISTING],
        volumes={volume: {"bind": "/v", "mode": "ro"}},
        remove=True,
    )
    return out.decode()


async def test_a_named_volume_backs_up_as_tar_and_restores_into_a_new_volume(
    bot, docker_client, app_volume, s3_url
):
    app = app_volume
    container = await asyncio.to_thread(app_container, docker_client, f"{app}-production")
    write = (
        "mkdir -p /data/sub/deeper && echo hello > /data/a.txt && "
        "head -c 300000 /dev/urandom > /data/sub/b.bin && chmod 600 /data/sub/b.bin && "
        "printf 'x%.0s' $(seq 1 5000) > /data/sub/deeper/c.txt && chown 1234:99 /data/a.txt "
        "&& ln -s a.txt /data/link && touch '/data/with space'"
    )
    sh(container, ["sh", "-c", write])
    done = result(await say(bot, f"volume backup {app} data", ADMIN))
    assert done.ok, done
    assert done.fields["location"].startswith(f"s3://{BUCKET}/bk/volumes/{app}/production/data/")
    (row,) = bot.engine.store.good_backups(f"{app}/production/data")
    restored = result(
        await say(bot, f"volume restore {app} data {row['id']} --to data-copy", ADMIN)
    )
    assert restored.ok, restored
    assert restored.details[0] == "files: 4"
    original = listing(docker_client, f"{app}-production-data")
    assert "sub/b.bin 600:0:300000" in original and "./link link a.txt" in original
    assert listing(docker_client, f"{app}-production-data-copy") == original
    # the helper services are gone
    helpers = docker_client.services.list(filters={"label": "shipbot.volume.helper"})
    assert not [s for s in helpers if app in s.attrs["Spec"]["Labels"]["shipbot.volume.helper"]]
