"""Backups that tell the whole truth, on the real engine: a real Postgres, moto on loopback as
S3, everything through the chat. A dropped table makes the next backup suspect, kept until
an admin accepts it; an encrypted backup's restore without the identity creates nothing and
names the variable; a moved bucket still restores what its rows recorded; a database whose
task cannot run is `down`. Every name starts with `zt`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import docker.errors
import pytest
import pytest_asyncio
from pyrage import x25519

from commands.dispatch import Dispatcher
from tests.chat import failure, remove_volumes, result, say, table
from tests.moto_s3 import make_bucket, s3_bucket
from tests.test_backups_docker import SHIPBOT_YML, other_bot, query, seed

pytestmark = [pytest.mark.docker, pytest.mark.asyncio(loop_scope="module")]

ADMIN = "console:alice"
BUCKET = "zt-backups"
IDENTITY = x25519.Identity.generate()
IDENTITY_ENV = "ZT_AGE_IDENTITY"


@pytest.fixture(scope="module")
def s3_url() -> Iterator[str]:
    with s3_bucket(BUCKET) as url:
        yield url


@pytest.fixture(scope="module")
def names(docker_client) -> Iterator[dict[str, str]]:
    tag = uuid.uuid4().hex[:6]
    made = {role: f"zt{role}{tag}" for role in ("pg", "copy", "moved")}
    yield made
    for name in made.values():
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.api.remove_service(f"db-{name}")
    remove_volumes(docker_client, [f"db-{name}-data" for name in made.values()])


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(docker_client, s3_url, names, tmp_path_factory) -> AsyncIterator[Dispatcher]:
    home: Path = tmp_path_factory.mktemp("home")
    yml = SHIPBOT_YML.format(endpoint=s3_url, bucket=BUCKET).replace(
        "  retention: {keep_last: 2}\n",
        f"  retention: {{keep_last: 5}}\n  age_recipients: ['{IDENTITY.to_public()}']\n"
        f"  age_identity_env: {IDENTITY_ENV}\n",
    )
    (home / "shipbot.yml").write_text(yml)
    os.environ.pop(IDENTITY_ENV, None)
    dispatcher = Dispatcher.open(home)
    pg = names["pg"]
    assert result(await say(dispatcher, f"db create postgres {pg} --version 15", ADMIN)).ok
    await asyncio.to_thread(seed, docker_client, "postgres", pg)
    yield dispatcher
    dispatcher.close()
    os.environ.pop(IDENTITY_ENV, None)


async def test_a_dropped_table_gives_a_suspect_backup_an_admin_accepts(bot, docker_client, names):
    pg = names["pg"]
    assert result(await say(bot, f"backup run {pg}", ADMIN)).ok
    query(docker_client, "postgres", pg, "DROP TABLE items")  # the clean-up, on purpose
    suspect = result(await say(bot, f"backup run {pg}", ADMIN))
    assert not suspect.ok and "is suspect: kept" in suspect.title, suspect
    first, second = bot.engine.store.backup(1), bot.engine.store.backup(2)
    assert second["status"] == "suspect" and second["deleted_at"] is None
    again = result(await say(bot, f"backup run {pg}", ADMIN))  # still compared with backup 1
    assert not again.ok and bot.engine.store.backup(3)["status"] == "suspect"
    refused = failure(await say(bot, f"backup accept {pg} 1", ADMIN))
    assert refused.message.startswith(f"backup 1 of {pg} is ok, not suspect")
    accepted = result(await say(bot, f"backup accept {pg} 3", ADMIN))
    assert accepted.ok and accepted.details == (f"retention deleted 1: {second['key']}",)
    assert bot.engine.store.backup(2)["deleted_at"] is not None
    assert result(await say(bot, f"backup run {pg}", ADMIN)).ok  # the new baseline
    listed = table(await say(bot, f"backup list {pg}", ADMIN))
    assert [r[:2] for r in listed.rows] == [("4", "ok"), ("3", "ok"), ("2", "deleted"), ("1", "ok")]
    assert first["bucket"] == BUCKET and first["endpoint"] == bot.config.backups.s3.endpoint


async def test_an_encrypted_restore_without_identity_creates_nothing(bot, docker_client, names):
    pg, copy = names["pg"], names["copy"]
    said = failure(await say(bot, f"restore {pg} 4 --to {copy}", ADMIN)).message
    assert said.startswith(f"backup 4 is encrypted (age): set {IDENTITY_ENV} to its age identity")
    with pytest.raises(docker.errors.NotFound):
        docker_client.api.inspect_service(f"db-{copy}")
    assert bot.engine.store.database(copy) is None
    os.environ[IDENTITY_ENV] = str(IDENTITY)
    restored = result(await say(bot, f"restore {pg} 4 --to {copy}", ADMIN))
    assert restored.ok, restored
    notes = "SELECT * FROM notes ORDER BY id"
    assert query(docker_client, "postgres", copy, notes) == query(
        docker_client, "postgres", pg, notes
    )


async def test_a_moved_bucket_still_restores_what_the_rows_recorded(
    bot, docker_client, names, s3_url
):
    pg, moved = names["pg"], names["moved"]
    make_bucket(s3_url, f"{BUCKET}-2")
    elsewhere = other_bot(bot, bucket=f"{BUCKET}-2")
    os.environ[IDENTITY_ENV] = str(IDENTITY)
    restored = result(await say(elsewhere, f"restore {pg} 4 --to {moved}", ADMIN))
    assert restored.ok, restored
    notes = query(docker_client, "postgres", moved, "SELECT count(*) FROM notes")
    assert notes.strip() == "3"
    assert result(await say(elsewhere, f"backup run {pg}", ADMIN)).ok
    assert bot.engine.store.backup(5)["bucket"] == f"{BUCKET}-2"


async def test_a_database_whose_task_cannot_run_is_down(bot, docker_client, names):
    copy = names["copy"]
    service = docker_client.services.get(f"db-{copy}")
    service.update(constraints=["node.labels.zt-nowhere==1"])  # no node can take it
    deadline = time.monotonic() + 60
    while True:
        rows = {r[0]: r for r in table(await say(bot, "db list", ADMIN)).rows}
        if rows[copy][3] == "0/1 down":
            break
        assert time.monotonic() < deadline, rows[copy]
        await asyncio.sleep(0.5)
    assert rows[names["pg"]][3] == "1/1 healthy"
