"""Failed requests through one Traefik (the one `proxy setup` runs) across deploys, on a
quiet machine and under a CPU hog: `shipbot deploy` of one app next to a raw
`docker service update` of another, both behind that same proxy.

A bounded load loop (new connection per request, loopback only) runs while five deploys of a
two-replica app follow each other, then while one release fails its health check; first
quiet, then with two busy-loop processes running (killed at the end). Traefik's task history
(`docker service ps`) is read before and after each run: it must not have been restarted.
Needs ./dev setup (engine, swarm, busybox and the Traefik test image).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker
import docker.errors

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _zd_load import Hog, Load, restarted, task_history, until_ok  # noqa: E402

from benchmarks._unique import RUN  # noqa: E402
from commands.dispatch import Dispatcher  # noqa: E402
from commands.replies import Result  # noqa: E402
from tests.chat import remove_apps, say  # noqa: E402

TRAEFIK = "shipbot-test/traefik:v3"
MIN_REQUESTS = 5000
DEPLOYS = 5
MODES = ("quiet", "CPU hog")
DOCKERFILE = (
    "FROM busybox\nCOPY www /www\n"
    'CMD echo "$(cat /www/v) from $(hostname)" > /www/index.html'
    " && exec httpd -f -p {port} -h /www\n"
)
APP_YML = """\
name: {name}
build: .
port: 8080
replicas: 2
domains: [{domain}]
https: false
healthcheck: {{cmd: ["wget", "-qO-", "http://127.0.0.1:8080/"], interval: 1s, timeout: 2s, \
retries: 2, start_period: 1s}}
stop_grace_period: 2s
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))  # noqa: S104
        return sock.getsockname()[1]


def docker_cli(*args: str) -> None:
    subprocess.run(["docker", *args], check=False, capture_output=True, timeout=180)


def create_raw(app: str, domain: str, image: str) -> None:
    """The raw app: the same health check and start-first rollout as shipbot's, routed by the
    same proxy (its label constraint and network), no retry middleware: plain Swarm."""
    router = f"traefik.http.routers.{app}"
    docker_cli(
        "service", "create", "--detach", "--name", app, "--network", "shipbot",
        "--endpoint-mode", "dnsrr", "--replicas", "2",
        "--health-cmd", "wget -qO- http://127.0.0.1:8080/", "--health-interval", "1s",
        "--health-timeout", "2s", "--health-retries", "2", "--health-start-period", "1s",
        "--update-order", "start-first", "--update-failure-action", "rollback",
        "--update-parallelism", "2", "--stop-grace-period", "2s",
        "-l", "shipbot.managed=true", "-l", "traefik.enable=true",
        "-l", "traefik.swarm.network=shipbot", "-l", f"{router}.entrypoints=web",
        "-l", f"{router}.rule=Host(`{domain}`)",
        "-l", f"traefik.http.services.{app}.loadbalancer.server.port=8080",
        "-l", "traefik.swarm.lbswarm=false", image,
    )  # fmt: skip


def raw_deploys(app: str, port: int, domain: str, mode: str) -> Load:
    with Load(port, domain) as load:
        for n in range(DEPLOYS):
            docker_cli("service", "update", "--env-add", f"N={mode[0]}{n}", app)
        load.finish(MIN_REQUESTS)
    return load


def raw_failing(app: str, port: int, domain: str) -> Load:
    with Load(port, domain) as load:
        docker_cli("service", "update", "--health-cmd", "false", app)
        load.finish(0)
    return load


class Ship:
    """The shipbot side: one app deployed through the chat path."""

    def __init__(self, bot: Dispatcher, name: str, folder: Path, port: int, domain: str):
        self.bot, self.name, self.folder, self.port, self.domain = bot, name, folder, port, domain
        self.version = 0

    async def run(self, text: str) -> Result:
        replies = await say(self.bot, text, user="console:bench")
        for reply in replies:
            if isinstance(reply, Result):
                return reply
        raise SystemExit(f"{text}: no result, replies: {replies}")

    async def deploys(self) -> Load:
        with Load(self.port, self.domain) as load:
            for _ in range(DEPLOYS):
                self.version += 1
                (self.folder / "www" / "v").write_text(f"v{self.version}\n")
                outcome = await self.run(f"deploy {self.name}")
                assert outcome.ok, outcome
            await asyncio.to_thread(load.finish, MIN_REQUESTS)
        return load

    async def failing(self) -> Load:
        (self.folder / "Dockerfile").write_text(DOCKERFILE.format(port=9999))
        with Load(self.port, self.domain) as load:
            outcome = await self.run(f"deploy {self.name}")
            assert not outcome.ok, outcome
            await asyncio.to_thread(load.finish, 0)
        (self.folder / "Dockerfile").write_text(DOCKERFILE.format(port=8080))
        return load


async def measure(root: Path, tag: str, ports: dict[str, int]) -> tuple[dict, dict, dict]:
    home = root / "home"
    home.mkdir()
    proxy = f"zdship-{tag}"
    (home / "shipbot.yml").write_text(
        f"admins: [console:bench]\nedge: {{image: {TRAEFIK}, service: {proxy}, "
        f"http_port: {ports['http']}, https_port: {ports['https']}, "
        f"acme: {{ca_server: 'https://127.0.0.1:9/dir', volume: zdship-{tag}-acme}}}}\n"
    )
    name, domain = f"zdship{tag}", f"ship-{tag}.test"
    raw_app, raw_domain, raw_image = f"zdraw-app-{tag}", f"raw-{tag}.test", f"zdraw/app:{tag}"
    folder = root / name
    (folder / "www").mkdir(parents=True)
    (folder / "www" / "v").write_text("v0\n")
    (folder / "Dockerfile").write_text(DOCKERFILE.format(port=8080))
    (folder / "app.yml").write_text(APP_YML.format(name=name, domain=domain))
    raw_folder = root / "raw"
    (raw_folder / "www").mkdir(parents=True)
    (raw_folder / "www" / "v").write_text("raw\n")
    (raw_folder / "Dockerfile").write_text(DOCKERFILE.format(port=8080))
    client = docker.from_env()
    bot = Dispatcher.open(home)
    ship = Ship(bot, name, folder, ports["http"], domain)
    cells: dict[tuple[str, str], Load] = {}
    restarts: dict[str, str] = {}
    loads: dict[str, float] = {}
    try:
        assert (await ship.run("proxy setup")).ok
        assert (await ship.run(f"apps add {name} --path {folder}")).ok
        assert (await ship.run(f"domain grant {name} {domain}")).ok
        assert (await ship.run(f"deploy {name}")).ok
        client.images.build(path=str(raw_folder), tag=raw_image, rm=True)
        create_raw(raw_app, raw_domain, raw_image)
        until_ok(ports["http"], domain)
        until_ok(ports["http"], raw_domain)
        for mode in MODES:
            with Hog() if mode == "CPU hog" else contextlib.nullcontext():
                before = task_history(proxy)
                cells["shipbot deploy ×5", mode] = await ship.deploys()
                cells["raw docker service update ×5", mode] = await asyncio.to_thread(
                    raw_deploys, raw_app, ports["http"], raw_domain, mode
                )
                cells["shipbot, release failing its check", mode] = await ship.failing()
                cells["raw, release failing its check", mode] = await asyncio.to_thread(
                    raw_failing, raw_app, ports["http"], raw_domain
                )
                restarts[mode] = restarted(before, task_history(proxy))
                loads[mode] = os.getloadavg()[0]
    finally:
        bot.close()
        remove_apps(client, [name])
        for service in (raw_app, proxy):
            with contextlib.suppress(docker.errors.NotFound):
                client.api.remove_service(service)
        with contextlib.suppress(docker.errors.APIError):
            client.api.remove_image(raw_image, force=True)
        deadline = time.monotonic() + 60  # the proxy's container lets go of its volume
        while time.monotonic() < deadline:
            with contextlib.suppress(docker.errors.APIError):  # in use: once more
                client.api.remove_network(f"shipbot-{name}-production")
            with contextlib.suppress(docker.errors.APIError):
                client.api.remove_volume(f"zdship-{tag}-acme")
            if not client.api.volumes(filters={"name": f"zdship-{tag}-acme"})["Volumes"]:
                break
            time.sleep(0.5)
    return cells, restarts, loads


def main() -> None:
    tag = RUN
    ports = {"http": free_port(), "https": free_port()}
    with tempfile.TemporaryDirectory() as tmp:
        cells, restarts, loads = asyncio.run(measure(Path(tmp), tag, ports))
    print(f"zero downtime through one Traefik (proxy setup's), {DEPLOYS} deploys of 2 replicas,")
    print("loopback load; failed requests of those sent:")
    print(f"  {'':<38}" + "".join(f"{mode:<26}" for mode in MODES))
    for label in dict.fromkeys(label for label, _ in cells):
        row = "".join(f"{cells[label, mode].cell():<26}" for mode in MODES)
        print(f"  {label:<38}{row}")
        for mode in MODES:
            if cells[label, mode].errors:
                print(f"      {mode}: {cells[label, mode].detail()}")
    for mode in MODES:
        print(f"  Traefik restarted during the {mode} run: {restarts[mode]}")
    print(
        "  1-minute load average at the end of each run: "
        + ", ".join(f"{mode} {loads[mode]:.1f}" for mode in MODES)
    )


if __name__ == "__main__":
    main()
