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


# The real-engine tier runs on two workers, a whole module to each (./dev test: --dist
# loadfile --no-loadscope-reorder), and xdist hands modules out in collection order: the
# longest go first, so the short ones fill in at the end. Seconds per module (setup, calls
# and teardown) in one process on the 2-core machine, 2026-12-08; the rest keep their order.
SLOWEST_FIRST = (
    "tests/test_apart_e2e_docker.py",  # 272
    "tests/test_fleet_faults_docker.py",  # 267
    "tests/test_self_deploy_docker.py",  # 133
    "tests/test_certs_docker.py",  # 107
    "tests/test_backups_more_docker.py",  # 85
    "tests/contract/test_swarm_contract.py",  # 76
    "tests/test_edge_docker.py",  # 76
    "tests/test_alerts_docker.py",  # 72
    "tests/test_networks_docker.py",  # 68
    "tests/test_servers_docker.py",  # 66
    "tests/test_databases_docker.py",  # 64
    "tests/test_fleet_data_docker.py",  # 58
    "tests/test_deploy_docker.py",  # 56
    "tests/test_fleet_watch_docker.py",  # 55
    "tests/test_ssh_sessions_docker.py",  # 53
    "tests/test_watch_subjects_docker.py",  # 50
    "tests/test_data_policy_docker.py",  # 42
    "tests/test_backups_docker.py",  # 42
    "tests/test_governance_docker.py",  # 41
    "tests/test_release_docker.py",  # 41
)


def pytest_collection_modifyitems(config, items):
    """A test that uses the engine is in the slow tier even if it forgot its marker; a test
    in a real-engine module without it would run in neither tier, and is refused. The
    slowest modules first (a stable sort: each module's tests keep their order)."""
    for item in items:
        if "docker_client" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.docker)
        if item.path.name.endswith(ENGINE_MODULES) and item.get_closest_marker("docker") is None:
            raise pytest.UsageError(
                f"{item.nodeid} is in a real-engine module (*{ENGINE_MODULES}) but not marked "
                "docker: mark it, or move it to an engine-free module"
            )
    rank = {path: n for n, path in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))
