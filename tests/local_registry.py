"""Debian's ``docker-registry`` (distribution 2.8) on loopback, with an htpasswd login, and
images pushed to it the way a CI job does (tag, push with credentials).

The engine treats 127.0.0.0/8 registries as insecure by default, so plain HTTP works;
``./dev setup`` installs the package and apache2-utils (for ``htpasswd -B``).
"""

from __future__ import annotations

import base64
import contextlib
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker.errors
import pytest

BINARY = "/usr/bin/docker-registry"
START_SECONDS = 15.0


@dataclass(frozen=True)
class Registry:
    host: str  # 127.0.0.1:PORT
    user: str
    password: str

    @property
    def auth(self) -> dict[str, str]:
        return {"username": self.user, "password": self.password}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1)  # noqa: S310 (loopback)
    except urllib.error.HTTPError as exc:
        return exc.code == 401  # up, and asking for the login
    except OSError:
        return False
    return True


@contextlib.contextmanager
def running(folder: Path, user: str, password: str) -> Iterator[Registry]:
    if not Path(BINARY).exists() or shutil.which("htpasswd") is None:
        pytest.skip("docker-registry or htpasswd missing: run ./dev setup")
    folder.mkdir(parents=True, exist_ok=True)
    htpasswd = folder / "htpasswd"
    subprocess.run(
        ["htpasswd", "-Bbc", str(htpasswd), user, password], check=True, capture_output=True
    )
    port = _free_port()
    config = folder / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {folder / 'data'}}}}}\n"
        f"http: {{addr: '127.0.0.1:{port}'}}\n"
        f"auth: {{htpasswd: {{realm: zi, path: {htpasswd}}}}}\n"
    )
    log = (folder / "registry.log").open("wb")
    process = subprocess.Popen([BINARY, "serve", str(config)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + START_SECONDS
        while not _answers(f"http://127.0.0.1:{port}/v2/"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((folder / "registry.log").read_text()[-2000:])
            time.sleep(0.1)
        yield Registry(f"127.0.0.1:{port}", user, password)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def build_web(client: Any, folder: Path, tag: str, page: str) -> None:
    """A busybox web server answering ``page`` on :8080, built locally as ``tag``."""
    context = folder / f"ctx-{page}"
    (context / "www").mkdir(parents=True, exist_ok=True)
    (context / "www" / "index.html").write_text(page + "\n")
    (context / "Dockerfile").write_text(
        "FROM busybox:latest\nCOPY www /www\n"
        'CMD ["httpd", "-f", "-v", "-p", "8080", "-h", "/www"]\n'
    )
    build_from(client, context, tag)


def build_from(client: Any, context: Path, tag: str) -> None:
    for message in client.api.build(
        path=str(context), tag=tag, rm=True, forcerm=True, decode=True, pull=False
    ):
        if "error" in message:
            raise RuntimeError(message["error"])


def push(client: Any, registry: Registry, local: str, repository: str, tag: str) -> str:
    """Push ``local`` as ``registry/repository:tag``; returns the digest the registry keeps."""
    remote = f"{registry.host}/{repository}"
    client.api.tag(local, remote, tag)
    digest = None
    for message in client.api.push(
        remote, tag=tag, stream=True, decode=True, auth_config=registry.auth
    ):
        if "error" in message:
            raise RuntimeError(message["error"])
        digest = (message.get("aux") or {}).get("Digest", digest)
    client.api.remove_image(f"{remote}:{tag}")  # only the registry has it now
    assert digest is not None
    return digest


MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)


def retag(registry: Registry, repository: str, source: str, target: str) -> None:
    """Point ``target`` at what ``source`` serves, in the registry alone (a CI job pushing a
    new ``latest``): the manifest read and put back under the new tag."""
    login = base64.b64encode(f"{registry.user}:{registry.password}".encode()).decode()
    base = f"http://{registry.host}/v2/{repository}/manifests"
    headers = {"Authorization": f"Basic {login}", "Accept": ", ".join(MANIFEST_TYPES)}
    asked = urllib.request.Request(f"{base}/{source}", headers=headers)  # noqa: S310 (loopback)
    with urllib.request.urlopen(asked, timeout=10) as answer:  # noqa: S310
        body, kind = answer.read(), answer.headers["Content-Type"]
    put = urllib.request.Request(
        f"{base}/{target}",
        data=body,
        method="PUT",
        headers={"Authorization": f"Basic {login}", "Content-Type": kind},
    )
    urllib.request.urlopen(put, timeout=10).close()  # noqa: S310


@contextlib.contextmanager
def with_web_images(client: Any, folder: Path) -> Iterator[tuple[Registry, dict[str, str]]]:
    """A registry holding zi/web:v1 (serves "one") and zi/web:v2 ("two"), and their digests."""
    with running(folder, "zi-ci", "zi-right-password") as registry:
        digests = {}
        for tag, page in (("v1", "one"), ("v2", "two")):
            # a tag of this call's own: modules on other workers build and remove theirs
            local = f"zi-web-{page}-{uuid.uuid4().hex[:6]}:latest"
            build_web(client, folder, local, page)
            digests[tag] = push(client, registry, local, "zi/web", tag)
            client.api.remove_image(local)
        try:
            yield registry, digests
        finally:
            forget(client, registry)


def forget(client: Any, registry: Registry) -> None:
    """Remove what the engine pulled from this registry (its port dies with it)."""
    for image in client.api.images():
        for ref in (image.get("RepoTags") or []) + (image.get("RepoDigests") or []):
            if ref.startswith(f"{registry.host}/"):
                with contextlib.suppress(docker.errors.APIError):
                    client.api.remove_image(ref, force=True)
