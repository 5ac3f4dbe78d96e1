import os

import docker
import pytest

from tests.chat import remove_apps


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SHIPBOT_HOME", str(tmp_path / "shipbot-home"))
    for key in list(os.environ):
        if key.startswith(("SLACK_", "DISCORD_")):
            monkeypatch.delenv(key)


@pytest.fixture(scope="session")
def docker_client():
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        if os.environ.get("SHIPBOT_REQUIRE_DOCKER") == "1":
            pytest.fail(f"no Docker engine: {exc}")
        pytest.skip("no Docker engine: run ./dev test")
    yield client
    client.close()


@pytest.fixture(scope="module")
def made_apps(docker_client):
    """Names of the apps a module deployed; removed once at its end (containers stop slowly)."""
    names: list[str] = []
    yield names
    remove_apps(docker_client, names)


def pytest_collection_modifyitems(config, items):
    """A test that uses the engine is in the slow tier even if it forgot its marker."""
    for item in items:
        if "docker_client" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.docker)
