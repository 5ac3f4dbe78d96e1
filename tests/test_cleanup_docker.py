"""What the tests' cleanup helpers remove on the real engine: only what the caller made. The
real-engine tier runs its modules on parallel workers, so another module's things are on
the engine at the same time, often with the same image id (the same build is cached)."""

from __future__ import annotations

import contextlib
import io
import tarfile
import uuid

import docker.errors
import pytest

from tests.chat import remove_apps

pytestmark = pytest.mark.docker


def one_file_image(client, repository: str, text: str) -> str:
    """An image of one file (its id new for each ``text``), tagged ``repository:1``."""
    data = text.encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        member = tarfile.TarInfo("zc")
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))
    client.api.import_image_from_data(buffer.getvalue(), repository=repository, tag="1")
    return client.api.inspect_image(f"{repository}:1")["Id"]


def test_removing_an_apps_images_leaves_anothers_with_the_same_id(docker_client):
    tag = uuid.uuid4().hex[:6]
    mine, theirs = f"zc{tag}a", f"zc{tag}b"
    # one image, two apps' release tags: what two identical builds give
    image = one_file_image(docker_client, f"shipbot/{mine}", tag)
    docker_client.api.tag(f"shipbot/{mine}:1", f"shipbot/{theirs}", "1")
    try:
        remove_apps(docker_client, [mine])
        assert docker_client.api.images(name=f"shipbot/{mine}") == []
        assert docker_client.api.inspect_image(f"shipbot/{theirs}:1")["Id"] == image
    finally:
        for app in (mine, theirs):
            with contextlib.suppress(docker.errors.ImageNotFound):
                docker_client.api.remove_image(f"shipbot/{app}:1")
