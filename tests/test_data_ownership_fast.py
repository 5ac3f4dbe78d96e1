"""Two control planes on one swarm, with data: each database's service, volume and network,
and each app's named volume, carry the id of the control plane that made them; neither
control plane reads, backs up, re-networks or removes the other's."""

from __future__ import annotations

from pathlib import Path

import pytest

from commands.dispatch import Dispatcher
from core.data import databases, volumes
from core.data.backup import BackupError, locate
from core.data.volumes import VolumeRef
from core.names import LABEL_PLANE
from core.swarm.testing import FakeSwarm
from tests.chat import failure, result, say
from tests.fast_plane import dispatcher, fake_swarm

ADMIN = "console:root"
WITH_VOLUME = "name: web\nimage: web:1\nvolumes: [data:/data]\n"


def bot_at(root: Path, name: str, swarm: FakeSwarm) -> Dispatcher:
    home = root / name
    home.mkdir()
    return dispatcher(home, swarm, [ADMIN])


@pytest.fixture
def two(tmp_path: Path, monkeypatch):
    swarm = fake_swarm("web:1", "postgres:16", "redis:7")
    one, other = bot_at(tmp_path, "one", swarm), bot_at(tmp_path, "two", swarm)
    yield one, other, swarm
    one.close()
    other.close()


def plane_of(found: dict | None) -> str | None:
    assert found is not None
    return ((found.get("Spec") or {}).get("Labels") or found.get("Labels") or {}).get(LABEL_PLANE)


def network_plane(swarm: FakeSwarm, name: str) -> str | None:
    return swarm.networks[name].get(LABEL_PLANE)


async def test_a_database_carries_its_control_plane_id_and_the_other_cannot_take_its_name(two):
    one, other, swarm = two
    assert result(await say(one, "db create postgres maindb", ADMIN)).ok
    mine = one.engine.plane.id
    assert plane_of(swarm.inspect_service("db-maindb")) == mine
    assert plane_of(swarm.inspect_volume("db-maindb-data")) == mine
    assert network_plane(swarm, "shipbot-db-maindb") == mine
    refused = failure(await say(other, "db create postgres maindb", ADMIN))
    assert refused.message == (
        "a service db-maindb runs already (another control plane's, on this shared swarm); "
        "pick another database name"
    )
    assert other.engine.store.database("maindb") is None
    listed = await say(other, "db list", ADMIN)
    assert "maindb" not in repr(listed)


async def test_another_control_planes_db_service_of_the_same_name_is_never_touched(two):
    one, other, swarm = two
    # the other control plane made `shared` first; this swarm's db-shared is now one's (as
    # when two planes' databases of one name met on a swarm they came to share)
    assert result(await say(other, "db create redis shared", ADMIN)).ok
    version = swarm.inspect_service("db-shared")["Version"]["Index"]
    stranger = one.engine.plane.id
    swarm._services["db-shared"].spec["Labels"][LABEL_PLANE] = stranger
    said = (
        f"the service db-shared on this swarm is another control plane's "
        f"({LABEL_PLANE}={stranger}), not this one's database shared: nothing was read or changed"
    )
    assert failure(await say(other, "db status shared", ADMIN)).message == said
    removal = failure(await say(other, 'db remove shared --delete-data --break-glass "t"', ADMIN))
    assert removal.message == said
    assert swarm.inspect_service("db-shared")["Version"]["Index"] == version
    assert swarm.inspect_volume("db-shared-data") is not None
    assert await databases.running_container(other.engine.plane, "shared") is None
    with pytest.raises(BackupError, match="another control plane's"):
        locate(swarm, "shared", other.engine.plane.id)


async def test_an_apps_named_volume_is_backed_up_only_by_its_control_plane(two, tmp_path):
    one, other, swarm = two
    for bot, name in ((one, "one"), (other, "two")):
        folder = tmp_path / f"{name}-web"
        folder.mkdir()
        (folder / "app.yml").write_text(WITH_VOLUME)
        assert result(await say(bot, f"apps add web --path {folder}", ADMIN)).ok
    assert result(await say(one, "deploy web 1", ADMIN)).ok
    assert plane_of(swarm.inspect_volume("web-production-data")) == one.engine.plane.id
    ref = VolumeRef("web", "production", "data")
    volumes.source(swarm, ref, one.engine.plane.id)  # its own: it passes every check
    with pytest.raises(BackupError, match="^the service web-production on this swarm is another"):
        volumes.source(swarm, ref, other.engine.plane.id)
