"""Seconds from `deploy` of an app with a new domain to the first valid certificate the
edge serves for it, with shipbot's proxy settings (Swarm polled every second) and with
Traefik's default (every 15 s), side by side. The CA is Debian's pebble on loopback
(PEBBLE_VA_NOSLEEP=1, as a real CA answers in about a second), the same for both.

Usage: python benchmarks/cert_latency.py [--rounds 3]. Goal: shipbot < 10 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import socket
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._unique import RUN, unique  # noqa: E402
from commands.dispatch import ChatRequest, Dispatcher  # noqa: E402
from commands.replies import Result  # noqa: E402
from core.edge.certs import CertError, probe  # noqa: E402
from tests.chat import remove_apps  # noqa: E402
from tests.pebble import Pebble, pebble  # noqa: E402

HTTP_PORT, HTTPS_PORT = 18280, 18643
EDGE = unique("certbench-edge")  # a second run on this engine has its own
LIMIT = 90.0


async def say(bot: Dispatcher, text: str) -> Result:
    replies = await bot.run(ChatRequest("console", "console:bench", "console", text))
    found = [r for r in replies if isinstance(r, Result)]
    if not found or not found[0].ok:
        raise SystemExit(f"{text}: {replies}")
    return found[0]


def verified(domain: str, root: str) -> bool:
    """The edge serves ``domain`` a certificate that pebble's root verifies."""
    with contextlib.suppress(CertError):
        if not probe("127.0.0.1", HTTPS_PORT, domain, timeout=2).covers(domain):
            return False
        context = ssl.create_default_context(cadata=root)
        with (
            contextlib.suppress(OSError, ssl.SSLError),
            socket.create_connection(("127.0.0.1", HTTPS_PORT), timeout=2) as raw,
            context.wrap_socket(raw, server_hostname=domain),
        ):
            return True
    return False


async def measure(ca: Pebble, refresh: int, rounds: int, work: Path, client) -> list[float]:
    config, volume = unique(f"certbench-ca{refresh}"), unique(f"certbench-acme{refresh}")
    client.api.create_config(config, ca.ca_pem)
    home = work / f"home-{refresh}"
    home.mkdir()
    (home / "shipbot.yml").write_text(
        f"admins: [console:bench]\nedge:\n  image: shipbot-test/traefik:v3\n  service: {EDGE}\n"
        f"  http_port: {HTTP_PORT}\n  https_port: {HTTPS_PORT}\n  refresh_seconds: {refresh}\n"
        f"  acme: {{ca_server: '{ca.directory}', ca_certificates: {config}, volume: {volume}}}\n"
    )
    bot = Dispatcher.open(home)
    apps = [f"certbench{refresh}x{i}-{RUN}" for i in range(rounds)]
    try:
        await say(bot, "proxy setup")
        root = ca.root()
        seconds = []
        for app in apps:
            folder = work / app
            shutil.copytree(ROOT / "examples" / "hello", folder)
            domain = f"{app}.acme.test"
            text = (folder / "app.yml").read_text().replace("name: hello", f"name: {app}")
            (folder / "app.yml").write_text(text + f"domains: [{domain}]\n")
            await say(bot, f"apps add {app} --path {folder}")
            await say(bot, f"domain grant {app} {domain} --env production")  # before the clock
            start = time.monotonic()
            await say(bot, f"deploy {app}")
            while not verified(domain, root):
                if time.monotonic() - start > LIMIT:
                    raise SystemExit(f"no valid certificate for {domain} within {LIMIT} s")
                await asyncio.sleep(0.2)
            seconds.append(time.monotonic() - start)
        return seconds
    finally:
        bot.close()
        remove_apps(client, apps)
        with contextlib.suppress(docker.errors.APIError):
            client.api.remove_service(EDGE)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(docker.errors.APIError):
                client.api.remove_volume(volume)
                break
            time.sleep(0.5)
        with contextlib.suppress(docker.errors.APIError):
            client.api.remove_config(config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    client = docker.from_env()
    gateway = client.api.inspect_network("docker_gwbridge")["IPAM"]["Config"][0]["Gateway"]
    with (
        tempfile.TemporaryDirectory() as tmp,
        pebble(Path(tmp), gateway, HTTP_PORT, 3600, base=14200) as ca,
    ):
        results = {
            "shipbot (refreshSeconds 1)": asyncio.run(
                measure(ca, 1, args.rounds, Path(tmp), client)
            ),
            "Traefik default (refreshSeconds 15)": asyncio.run(
                measure(ca, 15, args.rounds, Path(tmp), client)
            ),
        }
    print(f"deploy of a new domain → first valid certificate served ({args.rounds} rounds)")
    for name, seconds in results.items():
        runs = " ".join(f"{s:5.1f}" for s in seconds)
        middle, worst = statistics.median(seconds), max(seconds)
        print(f"  {name:36} median {middle:5.1f} s  max {worst:5.1f} s  [{runs}]")
    client.close()


if __name__ == "__main__":
    main()
