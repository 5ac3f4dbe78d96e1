"""The contract suite's one fixture: each test runs in the fake world, and in the real
engine's world in the docker tier."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.contract.world import EngineWorld, FakeWorld, World


@pytest.fixture(params=["fake", pytest.param("engine", marks=pytest.mark.docker)])
def world(request, tmp_path) -> Iterator[World]:
    if request.param == "engine":
        request.getfixturevalue("docker_client")  # skips (or fails) without an engine
    made: World = FakeWorld() if request.param == "fake" else EngineWorld(tmp_path)
    try:
        yield made
    finally:
        made.close()
