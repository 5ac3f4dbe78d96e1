"""Certificates on the real swarm: shipbot's proxy (edge.acme pointed at Debian's pebble, a
real ACME CA, with 5-minute certificates) serves a deployed app over HTTPS; the watcher posts
the issuance, a renewal, a failed issuance with the ACME error, and an expiry alert on an
injected clock."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
import shutil
import socket
import ssl
import time
from pathlib import Path

import pytest

from commands.catalog.certs import watch
from commands.dispatch import Dispatcher
from commands.replies import Message, decode
from core.edge.certs import CertError, acme_outcomes, probe
from tests.chat import remove_apps, result, say
from tests.clock import ManualClock
from tests.pebble import Pebble, pebble

pytestmark = pytest.mark.docker

HTTP_PORT, HTTPS_PORT = 18180, 18543
EDGE = "certtest-edge"
APPS = ["certweb", "certfail"]
HELLO = Path(__file__).resolve().parent.parent / "examples" / "hello"


def _wait_gone(client, prefix: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        names = [
            c["Labels"].get("com.docker.swarm.service.name", "")
            for c in client.api.containers(all=True)
        ]
        if not any(name.startswith(prefix) for name in names):
            return
        time.sleep(0.3)


@pytest.fixture(scope="module")
def ca(docker_client, tmp_path_factory):
    work = tmp_path_factory.mktemp("pebble")
    gateway = docker_client.api.inspect_network("docker_gwbridge")["IPAM"]["Config"][0]["Gateway"]
    with pebble(work, gateway, HTTP_PORT, validity=300) as found:
        yield found


@pytest.fixture(scope="module")
def plane_home(docker_client, ca: Pebble, tmp_path_factory):
    """A control plane whose proxy gets certificates from pebble; the proxy runs."""
    home = tmp_path_factory.mktemp("home")
    stamp = f"{time.time_ns() % 10**9}"
    config_name, volume = f"certtest-ca-{stamp}", f"certtest-acme-{stamp}"
    docker_client.api.create_config(config_name, ca.ca_pem)
    (home / "shipbot.yml").write_text(
        f"""admins: [console:alice]
notify: [{{platform: console, channel: certs, kinds: [certs]}}]
edge:
  image: shipbot-test/traefik:v3
  service: {EDGE}
  http_port: {HTTP_PORT}
  https_port: {HTTPS_PORT}
  acme:
    email: ops@acme.test
    ca_server: {ca.directory}
    ca_certificates: {config_name}
    volume: {volume}
    certificates_duration: 1
"""
    )
    bot = Dispatcher.open(home)
    yield bot, home
    bot.close()
    remove_apps(docker_client, APPS)
    with contextlib.suppress(Exception):
        docker_client.api.remove_service(EDGE)
    _wait_gone(docker_client, EDGE)
    for remove in (docker_client.api.remove_volume, docker_client.api.remove_config):
        with contextlib.suppress(Exception):
            remove(volume if remove == docker_client.api.remove_volume else config_name)


def app_dir(tmp: Path, name: str, domain: str) -> Path:
    folder = tmp / name
    shutil.copytree(HELLO, folder)
    text = (folder / "app.yml").read_text().replace("name: hello", f"name: {name}")
    (folder / "app.yml").write_text(text + f"domains: [{domain}]\n")
    return folder


async def deploy(bot: Dispatcher, tmp: Path, name: str, domain: str) -> None:
    folder = app_dir(tmp, name, domain)
    assert result(await say(bot, f"apps add {name} --path {folder}")).ok
    assert result(await say(bot, f"domain grant {name} {domain}")).ok
    assert result(await say(bot, f"deploy {name}")).ok


@pytest.fixture(scope="module")
def edge(plane_home, tmp_path_factory):
    bot, _ = plane_home

    async def start() -> None:
        assert result(await say(bot, "proxy setup")).ok
        await deploy(bot, tmp_path_factory.mktemp("apps"), "certweb", "web.acme.test")

    asyncio.run(start())
    return bot


def served(domain: str, timeout: float = 30):
    """Poll the proxy until it serves ``domain`` its own certificate."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(CertError):
            cert = probe("127.0.0.1", HTTPS_PORT, domain, timeout=2)
            if cert.covers(domain):
                return cert
        time.sleep(0.5)
    raise AssertionError(f"no certificate for {domain} within {timeout} s")


def https_get(domain: str, root: str) -> str:
    context = ssl.create_default_context(cadata=root)
    with (
        socket.create_connection(("127.0.0.1", HTTPS_PORT), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=domain) as tls,
    ):
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {domain}\r\nConnection: close\r\n\r\n".encode())
        return b"".join(iter(lambda: tls.recv(4096), b"")).decode()


def outbox(bot: Dispatcher) -> list[str]:
    rows = bot.engine.store.due_messages("console", time.time() + 1, limit=100)
    return [decode(r["payload"]).text for r in rows]


async def test_https_to_a_deployed_app_with_a_pebble_certificate(edge, ca):
    cert = served("web.acme.test")
    assert cert.issuer.startswith("Pebble Intermediate CA")
    answer = https_get("web.acme.test", ca.root())  # verified against pebble's root
    assert answer.startswith("HTTP/1.1 200") and answer.endswith("hello from shipbot\n")
    # status shows the domain, the probe's answer and the certificate it was served
    (line,) = [r.text for r in await say(edge, "status certweb") if isinstance(r, Message)]
    assert line.startswith(f"production: https://web.acme.test:{HTTPS_PORT}/ → 200 OK; ")
    assert f"certificate: {cert.issuer}, valid until " in line
    posts = await watch(edge.engine.plane, edge.notifier).check()
    assert [p.text.split(",")[0] for p in posts] == ["🔒 certificate issued for web.acme.test"]
    assert outbox(edge) == [p.text for p in posts]


def tokenless(text: str) -> str:
    return re.sub(r"acme-challenge/[A-Za-z0-9_-]+|challenge/[A-Za-z0-9_-]+", "<token>", text)


async def test_an_issuance_that_cannot_succeed_posts_the_acme_error(edge, ca, tmp_path):
    ca.servfail("fail.acme.test")
    await deploy(edge, tmp_path, "certfail", "fail.acme.test")
    watcher = watch(edge.engine.plane, edge.notifier)
    deadline = time.monotonic() + 40
    posts = []
    while time.monotonic() < deadline and not posts:
        posts = [p for p in await watcher.check() if "fail.acme.test" in p.text]
        time.sleep(0.5)
    assert [p.text.split(": ")[0] for p in posts] == [
        "❌ certificate for fail.acme.test could not be obtained"
    ]
    swarm = await edge.engine.plane.servers.client(edge.engine.plane.server)
    logged = acme_outcomes(line for _, _, line in swarm.service_logs(EDGE, 2000))
    error = logged["fail.acme.test"].error  # Traefik's `error` field, as it logged it
    assert "urn:ietf:params:acme:error:" in error and "could not resolve URL" in error
    # Traefik may try again meanwhile: the post quotes an attempt the log holds, whose
    # challenge token is its own
    assert tokenless(posts[0].text) == tokenless(
        f"❌ certificate for fail.acme.test could not be obtained: {error}"
    )
    assert await watcher.check() == []  # de-duplicated


async def test_the_expiry_alert_fires_on_an_injected_clock(edge):
    cert = served("web.acme.test")
    late = cert.not_after - dt.timedelta(seconds=20)
    posts = await watch(edge.engine.plane, edge.notifier, clock=ManualClock.at(late)).check()
    web = [p.text for p in posts if "web.acme.test" in p.text]
    if web and web[0].startswith("🔁"):  # renewed meanwhile: the new one's end
        cert = served("web.acme.test")
        late = cert.not_after - dt.timedelta(seconds=20)
        posts = await watch(edge.engine.plane, edge.notifier, clock=ManualClock.at(late)).check()
        web = [p.text for p in posts if "web.acme.test" in p.text]
    assert len(web) == 1 and web[0].startswith(
        "⚠️ certificate for web.acme.test expires in 0 days ("
    ), [p.text for p in posts]


async def test_a_short_lived_certificate_is_renewed_and_posted(edge):
    """Traefik checks renewals every minute (certificatesDuration=1); pebble's certificates
    live 5 minutes, so each check renews."""
    watcher = watch(edge.engine.plane, edge.notifier)
    deadline = time.monotonic() + 90
    renewed: list[str] = []
    while time.monotonic() < deadline and not renewed:
        renewed = [p.text for p in await watcher.check() if p.text.startswith("🔁")]
        time.sleep(1)
    assert renewed and renewed[0].startswith("🔁 certificate renewed for web.acme.test")
    assert renewed[0] in outbox(edge)
