import os

import pytest

# before anything imports the docker SDK: the SDK then loads as shipbot loads it, without
# its ssh:// adapter (paramiko, invoke: ~0.25 s of every worker) until a test needs it
import core.swarm  # noqa: F401, I001
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
    import docker  # noqa: PLC0415 (only the real-engine tier needs it)

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


ENGINE_MODULES = "_docker.py"  # a module named so holds real-engine tests only


def pytest_ignore_collect(collection_path, config):
    """The engine-free tier (``-m "not docker"``, each of its workers) does not import the
    real-engine modules only to deselect every test in them (~1 s of CPU a worker)."""
    if config.option.markexpr == "not docker" and collection_path.name.endswith(ENGINE_MODULES):
        return True
    return None


def pytest_collection_modifyitems(config, items):
    """A test that uses the engine is in the slow tier even if it forgot its marker; a test
    in a real-engine module without it would run in neither tier, and is refused."""
    for item in items:
        if "docker_client" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.docker)
        if item.path.name.endswith(ENGINE_MODULES) and item.get_closest_marker("docker") is None:
            raise pytest.UsageError(
                f"{item.nodeid} is in a real-engine module (*{ENGINE_MODULES}) but not marked "
                "docker: mark it, or move it to an engine-free module"
            )
