import os

import docker
import pytest

from tests.chat import remove_apps


@pytest.fixture(scope="session", autouse=True)
def _migrated_once(tmp_path_factory):
    """Each new store starts from one migrated copy (tests/store_template.py)."""
    from tests.store_template import copied_for_new_stores

    with copied_for_new_stores(tmp_path_factory.mktemp("store-template")):
        yield


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


@pytest.fixture(scope="session")
def s3_url():
    """moto's S3 on loopback, one server for the session (a worker's, under xdist): every
    test makes its own bucket, so they share nothing but the process."""
    from tests.moto_s3 import moto_server  # boto3 and moto only for the tests that use S3

    with moto_server() as url:
        yield url


def pytest_collection_modifyitems(config, items):
    """A test that uses the engine is in the slow tier even if it forgot its marker."""
    for item in items:
        if "docker_client" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.docker)
