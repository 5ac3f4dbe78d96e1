"""The edge on the real engine: `proxy setup` runs Traefik as a swarm service, and apps with
domains are reached through it on loopback; apps without domains are not."""

from __future__ import annotations

import contextlib
import http.client
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker.errors
import pytest

from commands.dispatch import Dispatcher
from tests.chat import result, say, table
from tests.waiting import until

pytestmark = pytest.mark.docker

TRAEFIK_IMAGE = "shipbot-test/traefik:v3"
DOCKERFILE = """\
FROM busybox
CMD echo "hello from $(hostname)" > /www/index.html && exec httpd -f -p 8080 -h /www
"""
APP_YML = """\
name: {name}
build: .
port: 8080
replicas: 2
healthcheck:
  cmd: ["wget", "-qO-", "http://127.0.0.1:8080/"]
  interval: 1s
  timeout: 2s
  start_period: 1s
stop_grace_period: 2s
{routing}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))  # noqa: S104 (host-mode publishing binds every address)
        return sock.getsockname()[1]


def get(port: int, host: str, timeout: float = 5.0) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/", headers={"Host": host})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def until_status(port: int, host: str, status: int, seconds: float = 20.0) -> str:
    """Poll through the proxy until ``host`` answers ``status``; the body it answered."""
    deadline = time.monotonic() + seconds
    last: object = None
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, http.client.HTTPException):
            last = get(port, host)
            if last[0] == status:
                return last[1]
        time.sleep(0.2)
    raise AssertionError(f"{host} never answered {status} through the proxy (last: {last!r})")


def make_app(root: Path, name: str, routing: str) -> Path:
    folder = root / name
    (folder / "www").mkdir(parents=True)
    (folder / "Dockerfile").write_text(DOCKERFILE)
    (folder / "app.yml").write_text(APP_YML.format(name=name, routing=routing))
    return folder


@pytest.fixture(scope="module")
def edge(docker_client, tmp_path_factory) -> Iterator[dict]:
    """A proxy of this module's own, on free ports, removed at the end with its volume."""
    service = f"edge{uuid.uuid4().hex[:8]}"
    ports = {"http": free_port(), "https": free_port()}
    yield {"service": service, **ports}
    with contextlib.suppress(docker.errors.NotFound):
        docker_client.api.remove_service(service)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            docker_client.api.remove_volume(f"{service}-acme")
            break
        except docker.errors.NotFound:
            break
        except docker.errors.APIError:  # in use until the task's container is gone
            time.sleep(0.3)


@pytest.fixture
def bot(docker_client, tmp_path: Path, edge, made_apps) -> Iterator[Dispatcher]:
    home = tmp_path / "home"
    home.mkdir()
    (home / "shipbot.yml").write_text(
        "admins: [console:alice]\n"
        f"edge: {{image: {TRAEFIK_IMAGE}, service: {edge['service']}, "
        f"http_port: {edge['http']}, https_port: {edge['https']}, "
        # nothing in this test asks for a certificate; should anything, it stays on loopback
        f"acme: {{ca_server: 'https://127.0.0.1:9/dir', volume: {edge['service']}-acme}}}}\n"
    )
    dispatcher = Dispatcher.open(home)
    yield dispatcher
    dispatcher.close()


async def test_proxy_routes_domains_to_every_replica(bot, edge, tmp_path, made_apps):
    setup = result(await say(bot, "proxy setup"))
    assert setup.ok, setup
    assert setup.title == f"proxy {edge['service']} runs (created)"
    again = result(await say(bot, "proxy setup"))
    assert again.title == f"proxy {edge['service']} runs (unchanged)"
    status = table(await say(bot, "proxy status"))
    assert status.rows == (
        (
            edge["service"],
            TRAEFIK_IMAGE,
            f"http {edge['http']}, https {edge['https']} (host mode)",
            "1/1 running",
            "3.7.15",
            "local",
        ),
    )

    name = f"e{uuid.uuid4().hex[:8]}"
    domain = f"{name}.test"
    made_apps.append(name)
    folder = make_app(tmp_path, name, f"domains: [{domain}]\nhttps: false")
    added = result(await say(bot, f"apps add {name} --path {folder}"))
    assert added.details == ("environments: production",)
    assert result(await say(bot, f"domain grant {name} {domain}")).ok
    deployed = result(await say(bot, f"deploy {name}"))
    assert deployed.ok, deployed
    assert deployed.fields["url"] == f"http://{domain}:{edge['http']}/"

    until_status(edge["http"], domain, 200)
    # both replicas answer, each with its own hostname (Traefik may list the second task a
    # moment after the first answers: asked until both did, for at most 20 s)
    bodies: set[str] = set()

    def both_answered() -> bool:
        bodies.update(get(edge["http"], domain)[1] for _ in range(5))
        return len(bodies) == 2

    await until(both_answered, 20, f"both replicas of {domain} answering (one answered)")
    assert all(body.startswith("hello from ") for body in bodies)
    lines = [r.text for r in await say(bot, f"status {name}") if type(r).__name__ == "Message"]
    assert lines == [f"production: http://{domain}:{edge['http']}/ → 200 OK"]


async def test_an_app_without_domains_gets_no_router(bot, edge, tmp_path, made_apps, docker_client):
    assert result(await say(bot, "proxy setup")).ok
    name = f"n{uuid.uuid4().hex[:8]}"
    made_apps.append(name)
    folder = make_app(tmp_path, name, "")
    added = result(await say(bot, f"apps add {name} --path {folder}"))
    assert added.details == (
        "environments: production",
        "no domains: reachable only inside the swarm network",
    )
    deployed = result(await say(bot, f"deploy {name}"))
    assert deployed.ok and "url" not in deployed.fields
    labels = docker_client.api.inspect_service(f"{name}-production")["Spec"]["Labels"]
    assert not [key for key in labels if key.startswith("traefik.")]
    assert get(edge["http"], f"{name}.test")[0] == 404


WILDCARD_DOCKERFILE = """\
FROM busybox
CMD echo "wildcard" > /www/index.html && exec httpd -f -vv -p 8080 -h /www
"""
ONE_REPLICA_YML = """\
name: {name}
build: .
port: 8080
healthcheck:
  cmd: ["wget", "-qO-", "http://127.0.0.1:8080/"]
  interval: 1s
  timeout: 2s
  start_period: 1s
stop_grace_period: 1s
https: false
domains: ['{domain}']
"""


def answered(port: int, host: str) -> str:
    """The body at ``/`` for ``host``; "" while the edge does not take connections (a network
    join restarts Traefik, stop-first)."""
    try:
        return get_path(port, host, "/")[1]
    except OSError:
        return ""


def get_path(port: int, host: str, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers={"Host": host})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def request_log(docker_client, service: str) -> str:
    """What busybox httpd -vv wrote for every request its tasks received (``url:/…``)."""
    out = []
    for task in docker_client.api.tasks(filters={"service": service}):
        container = (task["Status"].get("ContainerStatus") or {}).get("ContainerID")
        if container:
            out.append(docker_client.api.logs(container, stdout=True, stderr=True).decode())
    return "".join(out)


async def test_an_app_with_no_running_task_never_reaches_another_apps_wildcard(
    bot, edge, tmp_path, made_apps, docker_client
):
    assert result(await say(bot, "proxy setup")).ok
    run = uuid.uuid4().hex[:8]
    zone = f"z{run}.test"
    apps = {f"shop{run}": f"shop.{zone}", f"wild{run}": f"*.{zone}"}
    made_apps.extend(apps)
    for name, domain in apps.items():
        folder = tmp_path / name
        (folder / "www").mkdir(parents=True)
        wildcard = domain.startswith("*.")
        (folder / "Dockerfile").write_text(WILDCARD_DOCKERFILE if wildcard else DOCKERFILE)
        (folder / "app.yml").write_text(ONE_REPLICA_YML.format(name=name, domain=domain))
        assert result(await say(bot, f"apps add {name} --path {folder}")).ok
        assert result(await say(bot, f"domain grant {name} '{domain}'")).ok
    for name in apps:
        deployed = result(await say(bot, f"deploy {name}"))
        assert deployed.ok, deployed
    shop, wild = f"shop.{zone}", f"wild{run}-production"

    # the exact name is shop's (once Traefik has read its router); any other name the
    # wildcard's
    deadline = time.monotonic() + 60
    while not answered(edge["http"], shop).startswith("hello from "):
        assert time.monotonic() < deadline, "shop's own router never answered"
        time.sleep(0.3)
    assert until_status(edge["http"], f"other.{zone}", 200) == "wildcard\n"

    # shop has no running task: Traefik drops its router, and its name still never
    # reaches the wildcard app (the edge answers itself: 404, or 503 with a Traefik
    # whose swarm provider honours allowEmptyServices)
    assert result(await say(bot, f"scale shop{run} 0")).ok
    deadline = time.monotonic() + 20
    answers = [get_path(edge["http"], shop, f"/?probe-{run}")]
    while answers[-1][0] == 200 and time.monotonic() < deadline:
        time.sleep(0.3)
        answers.append(get_path(edge["http"], shop, f"/?probe-{run}"))
    answers += [get_path(edge["http"], shop, f"/?probe-{run}") for _ in range(5)]
    gone = answers[-6:]
    assert {a for a in gone} <= {(404, "404 page not found\n"), (503, "Service Unavailable")}, (
        answers
    )
    assert get_path(edge["http"], f"other.{zone}", f"/control-{run}")[0] == 404  # busybox's
    log = request_log(docker_client, wild)
    assert f"url:/control-{run}" in log  # the request log shows what reached the wildcard
    assert f"probe-{run}" not in log
    status = [r.text for r in await say(bot, f"status wild{run}") if type(r).__name__ == "Message"]
    assert status == [f"production: http://*.{zone}:{edge['http']}/ → 200 OK"]
