"""Network isolation on the real engine: each app environment on its own overlay network.

One story, to keep the engine's time short: two routed apps and a redis. From `mine`, the
other app's service does not resolve, the database attached to mine answers, and both apps
answer through the edge, which joined each one's network (measured: what the other domain
lost while the edge restarted to join mine's). A `links:` no admin granted is refused with
nothing changed; once granted, mine reaches the other app.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker.errors
import pytest

from commands.dispatch import Dispatcher
from tests.chat import failure, logs, remove_volumes, result, say, steps
from tests.test_edge_docker import TRAEFIK_IMAGE, free_port, get, until_status

pytestmark = pytest.mark.docker

ADMIN = "console:alice"
DOCKERFILE = """\
FROM busybox
CMD echo "hello from $(hostname)" > /www/index.html && exec httpd -f -p 8080 -h /www
"""
APP_YML = """\
name: {name}
build: .
port: 8080
domains: [{name}.test]
https: false
healthcheck:
  cmd: ["wget", "-qO-", "http://127.0.0.1:8080/"]
  interval: 1s
  timeout: 2s
  start_period: 1s
stop_grace_period: 1s
{extra}
"""
# the redis password from REDIS_URL (redis://default:PASSWORD@host:6379/0), then PING
REDIS_PING = (
    "p=${REDIS_URL#*default:}; p=${p%%@*}; h=${REDIS_URL#*@}; h=${h%%:*}; "
    'printf "AUTH %s\\r\\nPING\\r\\n" "$p" | nc -w 3 "$h" 6379'
)


class Load:
    """GETs to one domain through the edge, every 20 ms, at most 2,000 or 120 s: how many
    failed, and from the first failure to the last."""

    def __init__(self, port: int, host: str) -> None:
        self.port, self.host = port, host
        self.sent = 0
        self.failed_at: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + 120
        while not self._stop.is_set() and self.sent < 2000 and time.monotonic() < deadline:
            self.sent += 1
            try:
                ok = get(self.port, self.host, timeout=2.0)[0] == 200
            except OSError:
                ok = False
            if not ok:
                self.failed_at.append(time.monotonic())
            self._stop.wait(0.02)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def gap(self) -> float:
        return self.failed_at[-1] - self.failed_at[0] if self.failed_at else 0.0


@pytest.fixture
def names(docker_client) -> Iterator[dict[str, str]]:
    """This test's edge, apps and database; every service and network it made goes."""
    tag = uuid.uuid4().hex[:7]
    made = {
        "edge": f"edge{tag}",
        "http": str(free_port()),
        "mine": f"nm{tag}",
        "other": f"no{tag}",
        "db": f"nr{tag}",
    }
    yield made
    services = [made["edge"], f"db-{made['db']}"]
    services += [f"{made[app]}-production" for app in ("mine", "other")]
    for service in services:
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.api.remove_service(service)
    networks = [f"shipbot-db-{made['db']}"]
    networks += [f"shipbot-{made[app]}-production" for app in ("mine", "other")]
    deadline = time.monotonic() + 60
    while networks and time.monotonic() < deadline:
        for network in list(networks):
            try:
                docker_client.api.remove_network(network)
                networks.remove(network)
            except docker.errors.NotFound:
                networks.remove(network)
            except docker.errors.APIError:  # in use until the tasks' containers are gone
                pass
        time.sleep(0.3)
    remove_volumes(docker_client, [f"db-{made['db']}-data", f"{made['edge']}-acme"])


@pytest.fixture
def bot(docker_client, tmp_path: Path, names, made_apps) -> Iterator[Dispatcher]:
    made_apps += [names["mine"], names["other"]]
    home = tmp_path / "home"
    home.mkdir()
    (home / "shipbot.yml").write_text(
        f"admins: [{ADMIN}]\n"
        f"edge: {{image: {TRAEFIK_IMAGE}, service: {names['edge']}, "
        f"http_port: {names['http']}, https_port: {free_port()}, "
        f"acme: {{ca_server: 'https://127.0.0.1:9/dir', volume: {names['edge']}-acme}}}}\n"
        "data: {images: {redis: 'shipbot-test/redis:{version}'}}\n"
    )
    dispatcher = Dispatcher.open(home)
    yield dispatcher
    dispatcher.close()


def make_app(root: Path, name: str, extra: str = "") -> Path:
    folder = root / name
    (folder / "www").mkdir(parents=True, exist_ok=True)
    (folder / "Dockerfile").write_text(DOCKERFILE)
    (folder / "app.yml").write_text(APP_YML.format(name=name, extra=extra))
    return folder


def networks_of(client, service: str) -> list[str]:
    spec = client.api.inspect_service(service)["Spec"]["TaskTemplate"]
    ids = [n["Target"] for n in spec.get("Networks") or []]
    return sorted(client.api.inspect_network(i)["Name"] for i in ids)


async def test_each_app_environment_reaches_only_what_an_admin_let_it(
    bot, names, docker_client, tmp_path
):
    mine, other, db, port = names["mine"], names["other"], names["db"], int(names["http"])
    edge = names["edge"]
    assert result(await say(bot, "proxy setup")).ok

    # the first routed app: the edge joins its network, and it answers through the edge
    assert result(await say(bot, f"apps add {other} --path {make_app(tmp_path, other)}")).ok
    assert result(await say(bot, f"domain grant {other} {other}.test")).ok
    deployed = await say(bot, f"deploy {other}")
    assert result(deployed).ok, deployed
    assert f"the edge {edge} joins network shipbot-{other}-production" in " ".join(steps(deployed))
    until_status(port, f"{other}.test", 200)

    # mine names an attached redis; deploying it while other.test is under load
    assert result(await say(bot, f"db create redis {db} --version 7")).ok
    folder = make_app(tmp_path, mine, f"databases: [{db}]")
    assert result(await say(bot, f"apps add {mine} --path {folder}")).ok
    assert result(await say(bot, f"domain grant {mine} {mine}.test")).ok
    assert result(await say(bot, f"db attach {db} {mine}")).ok
    with Load(port, f"{other}.test") as load:
        deployed = await say(bot, f"deploy {mine}")
    assert result(deployed).ok, deployed
    said = " ".join(steps(deployed))
    assert f"database {db} joined network shipbot-{mine}-production" in said
    assert f"the edge {edge} joins network shipbot-{mine}-production" in said
    print(f"edge join under load: {len(load.failed_at)} of {load.sent} failed, gap {load.gap:.2f}s")
    assert load.sent > 50

    assert networks_of(docker_client, f"{mine}-production") == [f"shipbot-{mine}-production"]
    assert networks_of(docker_client, f"db-{db}") == sorted(
        [f"shipbot-db-{db}", f"shipbot-{mine}-production"]
    )
    assert networks_of(docker_client, edge) == sorted(
        ["shipbot", f"shipbot-{mine}-production", f"shipbot-{other}-production"]
    )

    # from mine: the other app does not resolve; its own database answers; both route
    # an HTTP GET with nc: busybox's static wget crashes on names (no NSS in the image)
    target = f"{other}-production"
    probe = f"run {mine} -- sh -c 'printf \"GET / HTTP/1.0\\r\\n\\r\\n\" | nc -w 3 {target} 8080'"
    refused = await say(bot, probe)
    assert not result(refused).ok, refused
    assert logs(refused) == [f"nc: bad address '{target}'"], refused
    pinged = await say(bot, f"run {mine} -- sh -c '{REDIS_PING}'")
    assert result(pinged).ok, pinged
    assert [line.strip() for line in logs(pinged)] == ["+OK", "+PONG"]
    until_status(port, f"{mine}.test", 200)
    assert get(port, f"{other}.test")[0] == 200

    # a link app.yml asks for and no admin granted: refused, nothing changes
    before = docker_client.api.inspect_service(f"{mine}-production")["Version"]["Index"]
    (folder / "app.yml").write_text(
        APP_YML.format(name=mine, extra=f"databases: [{db}]\nlinks: [{other}]")
    )
    asked = failure(await say(bot, f"deploy {mine}"))
    assert f"an admin runs `link grant {mine} {other} --env production`" in asked.message
    assert "nothing was changed" in asked.message
    after = docker_client.api.inspect_service(f"{mine}-production")["Version"]["Index"]
    assert after == before
    assert [
        r.number for r in await bot.engine.db.in_thread(lambda: bot.engine.store.releases(mine))
    ] == [1]

    # granted: mine's service and jobs are on other's network too, and reach it
    granted = result(await say(bot, f"link grant {mine} {other}"))
    assert granted.ok and granted.title == f"{mine} may reach {other} in production"
    assert result(await say(bot, f"deploy {mine}")).ok
    assert networks_of(docker_client, f"{mine}-production") == sorted(
        [f"shipbot-{mine}-production", f"shipbot-{other}-production"]
    )
    reached = await say(bot, probe)
    assert result(reached).ok, reached
    assert logs(reached)[0].strip() == "HTTP/1.1 200 OK", reached
    assert logs(reached)[-1].startswith("hello from "), reached
