"""Failed requests through Traefik across deploys: a raw `docker service update` behind a
Traefik with its defaults, next to `shipbot deploy` behind `proxy setup`'s Traefik.

A bounded load loop (new connection per request, loopback only) runs while five deploys of a
two-replica app follow each other, then while one release fails its health check. Needs
./dev setup (engine, swarm, busybox and the Traefik test image). Prints failed counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import docker
import docker.errors

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from commands.dispatch import Dispatcher  # noqa: E402
from commands.replies import Result  # noqa: E402
from tests.chat import remove_apps, say  # noqa: E402

TRAEFIK = "shipbot-test/traefik:v3"
RATE = 120  # requests per second, aimed at
MIN_REQUESTS = 5000
MAX_SECONDS = 240
DEPLOYS = 5
HEALTH = ["CMD", "wget", "-qO-", "http://127.0.0.1:8080/"]
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
healthcheck: {{cmd: {health}, interval: 1s, timeout: 2s, retries: 2, start_period: 1s}}
stop_grace_period: 2s
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))  # noqa: S104
        return sock.getsockname()[1]


class Load:
    """GET / with a Host header at RATE per second until stopped (bounded in count and time)."""

    def __init__(self, port: int, host: str) -> None:
        self.port, self.host = port, host
        self.sent = self.failed = 0
        self.errors: dict[str, int] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(4)]

    def _one(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", "/", headers={"Host": self.host})
            response = conn.getresponse()
            response.read()
            why = None if response.status == 200 else str(response.status)
        except (OSError, http.client.HTTPException) as exc:
            why = type(exc).__name__
        finally:
            conn.close()
        with self._lock:
            self.sent += 1
            if why:
                self.failed += 1
                self.errors[why] = self.errors.get(why, 0) + 1

    def _run(self) -> None:
        gap = len(self._threads) / RATE
        deadline = time.monotonic() + MAX_SECONDS
        while not self._stop.is_set() and time.monotonic() < deadline:
            started = time.monotonic()
            self._one()
            time.sleep(max(0.0, gap - (time.monotonic() - started)))

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def finish(self, at_least: int) -> None:
        """Stop once ``at_least`` requests were sent (or the time bound passed)."""
        deadline = time.monotonic() + MAX_SECONDS
        while self.sent < at_least and time.monotonic() < deadline:
            time.sleep(0.1)
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    def line(self, label: str, seconds: float) -> str:
        rps = self.sent / seconds if seconds else 0
        detail = f" {self.errors}" if self.errors else ""
        return f"{label:<34} {self.failed:>4} failed of {self.sent:>5} ({rps:.0f} rps){detail}"


def until_ok(port: int, host: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/", headers={"Host": host})
            if conn.getresponse().status == 200:
                return
        time.sleep(0.2)
    raise SystemExit(f"{host} never answered through Traefik on :{port}")


def docker_cli(*args: str) -> None:
    subprocess.run(["docker", *args], check=False, capture_output=True, timeout=180)


def raw_side(client: docker.DockerClient, tag: str, image: str, ports: dict) -> list[str]:
    """Traefik with its defaults and an app updated with `docker service update`."""
    proxy, app, domain = f"zdraw-traefik-{tag}", f"zdraw-app-{tag}", f"raw-{tag}.test"
    docker_cli(
        "service", "create", "--detach", "--name", proxy, "--network", "shipbot",
        "--publish", f"mode=host,target=80,published={ports['raw']}",
        "--mount", "type=bind,src=/var/run/docker.sock,dst=/var/run/docker.sock,ro",
        TRAEFIK, "--entrypoints.web.address=:80", "--providers.swarm=true",
        "--providers.swarm.exposedByDefault=false", "--providers.swarm.network=shipbot",
        f"--providers.swarm.constraints=Label(`zdraw.{tag}`,`true`)",
        "--global.checkNewVersion=false",
    )  # fmt: skip
    docker_cli(
        "service", "create", "--detach", "--name", app, "--network", "shipbot",
        "--endpoint-mode", "dnsrr", "--replicas", "2",
        "--health-cmd", "wget -qO- http://127.0.0.1:8080/", "--health-interval", "1s",
        "--health-retries", "2", "--health-start-period", "1s",
        "--update-order", "start-first", "--update-failure-action", "rollback",
        "--update-parallelism", "2", "--stop-grace-period", "2s",
        "-l", f"zdraw.{tag}=true", "-l", "traefik.enable=true",
        "-l", f"traefik.http.routers.{app}.rule=Host(`{domain}`)",
        "-l", f"traefik.http.services.{app}.loadbalancer.server.port=8080",
        "-l", "traefik.swarm.lbswarm=false", image,
    )  # fmt: skip
    lines = []
    try:
        until_ok(ports["raw"], domain)
        started = time.monotonic()
        with Load(ports["raw"], domain) as load:
            for n in range(DEPLOYS):
                docker_cli("service", "update", "--env-add", f"N={n}", app)
            load.finish(MIN_REQUESTS)
        lines.append(load.line("raw docker service update ×5", time.monotonic() - started))
        started = time.monotonic()
        with Load(ports["raw"], domain) as load:
            docker_cli("service", "update", "--health-cmd", "false", app)
            load.finish(0)
        lines.append(load.line("raw, release failing its check", time.monotonic() - started))
    finally:
        for service in (app, proxy):
            with contextlib.suppress(docker.errors.NotFound):
                client.api.remove_service(service)
    return lines


async def shipbot_side(root: Path, tag: str, ports: dict) -> list[str]:
    home = root / "home"
    home.mkdir()
    (home / "shipbot.yml").write_text(
        f"admins: [console:bench]\nedge: {{image: {TRAEFIK}, service: zdship-{tag}, "
        f"http_port: {ports['http']}, https_port: {ports['https']}, "
        f"acme: {{ca_server: 'https://127.0.0.1:9/dir', volume: zdship-{tag}-acme}}}}\n"
    )
    name, domain = f"zdship{tag}", f"ship-{tag}.test"
    folder = root / name
    (folder / "www").mkdir(parents=True)
    (folder / "www" / "v").write_text("v0\n")
    (folder / "Dockerfile").write_text(DOCKERFILE.format(port=8080))
    health = '["wget", "-qO-", "http://127.0.0.1:8080/"]'
    (folder / "app.yml").write_text(APP_YML.format(name=name, domain=domain, health=health))
    bot = Dispatcher.open(home)
    lines = []

    async def run(text: str) -> Result:
        replies = await say(bot, text, user="console:bench")
        return next(r for r in replies if isinstance(r, Result))

    try:
        assert (await run("proxy setup")).ok
        assert (await run(f"apps add {name} --path {folder}")).ok
        assert (await run(f"deploy {name}")).ok
        until_ok(ports["http"], domain)
        started = time.monotonic()
        with Load(ports["http"], domain) as load:
            for n in range(DEPLOYS):
                (folder / "www" / "v").write_text(f"v{n + 1}\n")
                outcome = await run(f"deploy {name}")
                assert outcome.ok, outcome
            await asyncio.to_thread(load.finish, MIN_REQUESTS)
        lines.append(load.line("shipbot deploy ×5", time.monotonic() - started))
        (folder / "Dockerfile").write_text(DOCKERFILE.format(port=9999))
        started = time.monotonic()
        with Load(ports["http"], domain) as load:
            outcome = await run(f"deploy {name}")
            assert not outcome.ok, outcome
            await asyncio.to_thread(load.finish, 0)
        lines.append(load.line("shipbot, release failing its check", time.monotonic() - started))
    finally:
        bot.close()
        client = docker.from_env()
        remove_apps(client, [name])
        with contextlib.suppress(docker.errors.NotFound):
            client.api.remove_service(f"zdship-{tag}")
    return lines


def main() -> None:
    client = docker.from_env()
    tag = uuid.uuid4().hex[:6]
    ports = {"raw": free_port(), "http": free_port(), "https": free_port()}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shipbot = asyncio.run(shipbot_side(root, tag, ports))
        raw_image = f"zdraw/app:{tag}"
        folder = root / "raw"
        (folder / "www").mkdir(parents=True)
        (folder / "www" / "v").write_text("raw\n")
        (folder / "Dockerfile").write_text(DOCKERFILE.format(port=8080))
        client.images.build(path=str(folder), tag=raw_image, rm=True)
        try:
            raw = raw_side(client, tag, raw_image, ports)
        finally:
            with contextlib.suppress(docker.errors.APIError):
                client.api.remove_image(raw_image, force=True)
    print(f"zero downtime through Traefik, {DEPLOYS} deploys of 2 replicas, loopback load:")
    for line in raw + shipbot:
        print("  " + line)


if __name__ == "__main__":
    main()
