"""A database on a real remote server (issue 23): one Docker-in-Docker node with sshd
(tests/multinode.py) added over SSH; `db create --server` runs Postgres on its swarm, a
backup goes to moto, a restore makes a copy beside it, and both are removed there. Nothing
of it runs on this host's engine; `proxy status --server` reads that server's Traefik."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from commands.dispatch import ChatRequest, Dispatcher
from tests.chat import result, say, table
from tests.moto_s3 import s3_bucket
from tests.multinode import Node
from tests.multinode_fixtures import (
    EDGE_YML,
    POSTGRES_IMAGE,
    TRAEFIK_IMAGE,
    plane,
    psql,
    ssh_cluster,
)

pytestmark = pytest.mark.docker

PREFIX = "fcd"
SUBNET = "192.168.171.0/24"
BUCKET = "fleet-data"
ADMIN = "console:alice"


@pytest.fixture(scope="module")
def node(docker_client) -> Iterator[tuple[Node, str]]:
    # what it would pull from a registry
    with ssh_cluster(PREFIX, SUBNET, 1, [TRAEFIK_IMAGE, POSTGRES_IMAGE]) as (up, private):
        yield up.nodes[0], private


@pytest.fixture
def bot(node, tmp_path) -> Iterator[Dispatcher]:
    with s3_bucket(BUCKET) as url:
        settings = (
            f"admins: [{ADMIN}]\n"
            'data: {images: {postgres: "shipbot-test/postgres:{version}"}}\n'
            f"{EDGE_YML}"
            "backups:\n"
            f"  s3: {{endpoint: '{url}', bucket: {BUCKET}, prefix: bk, "
            "access_key_env: TEST_S3_ACCESS, secret_key_env: TEST_S3_SECRET, "
            "timeout_seconds: 5}\n"
        )
        with plane(tmp_path / "home", settings) as dispatcher:
            yield dispatcher


def services(node: Node) -> list[str]:
    return node.sh("docker", "service", "ls", "--format", "{{.Name}}").stdout.split()


async def test_a_postgres_on_a_remote_server_is_backed_up_and_restored_there(
    bot, node, docker_client
):
    server, private = node
    stored = await bot.run(ChatRequest("console", ADMIN, "console", "ssh-key import fcd", private))
    assert result(stored).ok
    added = await say(bot, f"server add fcd-1 ssh://root@{server.ip} --key fcd", ADMIN)
    assert result(added).ok, added
    proxy = table(await say(bot, "proxy status --server fcd-1", ADMIN))
    assert proxy.rows[0][3] == "1/1 running" and proxy.rows[0][5] == "fcd-1", proxy

    name = f"fcd{uuid.uuid4().hex[:6]}"
    made = await say(bot, f"db create postgres {name} --version 15 --server fcd-1", ADMIN)
    assert result(made).ok, made
    assert result(made).fields["server"] == "fcd-1"
    assert f"db-{name}" in services(server)
    local = {s.name for s in docker_client.services.list()}
    assert f"db-{name}" not in local  # nothing on this host's engine
    db = await bot.engine.database(name)
    user, database = db.credentials.user, db.credentials.database
    psql(server, f"db-{name}", user, database, "CREATE TABLE items (id int PRIMARY KEY)")
    psql(server, f"db-{name}", user, database, "INSERT INTO items VALUES (1), (2), (3)")

    backed = result(await say(bot, f"backup run {name}", ADMIN))
    assert backed.ok and backed.title == f"backup 1 of {name} is stored", backed
    restored = await say(bot, f"restore {name} 1 --to {name}-copy", ADMIN)
    assert result(restored).ok, restored
    assert "public.items: 3" in result(restored).details
    assert f"db-{name}-copy" in services(server)
    copy = await bot.engine.database(f"{name}-copy")
    assert copy.server == "fcd-1"
    rows = psql(
        server,
        f"db-{name}-copy",
        copy.credentials.user,
        copy.credentials.database,
        "SELECT count(*) FROM items",
    )
    assert rows == "3"
    listed = table(await say(bot, "db list", ADMIN))
    assert {(r[0], r[3], r[5]) for r in listed.rows} == {
        (name, "1/1 healthy", "fcd-1"),
        (f"{name}-copy", "1/1 healthy", "fcd-1"),
    }

    for gone in (f"{name}-copy", name):
        removed = await say(bot, f'db remove {gone} --delete-data --break-glass "test"', ADMIN)
        assert result(removed).ok, removed
        assert f"db-{gone}" not in services(server)
    volumes = server.sh("docker", "volume", "ls", "--format", "{{.Name}}").stdout.split()
    assert f"db-{name}-data" not in volumes and f"db-{name}-copy-data" not in volumes
