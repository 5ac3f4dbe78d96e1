"""shipbot's own image, built offline: the project's Dockerfile with BASE set to a Python
base made from the debootstrap Debian of tests/db_images.py (nothing can be pulled here).

Both are cached by tag; the shipbot image is built again only when what goes into it
changed (its label holds a digest of the build's inputs). ``python -m tests.self_image``
builds them and prints the build time.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.db_images import BASE as DEBIAN
from tests.db_images import build_base, cached, one_builder

ROOT = Path(__file__).resolve().parent.parent
PYTHON_BASE = "shipbot-test/python:bookworm"
IMAGE = "shipbot-test/shipbot:dev"
LABEL = "shipbot.test.inputs"
INPUTS = ("Dockerfile", "requirements.lock", "pyproject.toml", "README.md", "deploy")
PACKAGES = ("bot", "commands", "core", "rooms")  # what the Dockerfile copies
# the CA certificates this host trusts: pip inside the build reaches its index through them
HOST_CAS = Path("/usr/local/share/ca-certificates")
PYTHON_DOCKERFILE = f"""\
FROM {DEBIAN}
COPY certs/ /usr/local/share/ca-certificates/
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
      python3 python3-venv ca-certificates \\
 && update-ca-certificates \\
 && rm -rf /var/lib/apt/lists/*
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt
"""


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def inputs_digest() -> str:
    sha = hashlib.sha256()
    paths = [ROOT / name for name in INPUTS] + [ROOT / name for name in PACKAGES]
    for top in paths:
        files = sorted(top.rglob("*")) if top.is_dir() else [top]
        for path in files:
            if path.is_file() and "__pycache__" not in path.parts:
                sha.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return sha.hexdigest()[:16]


def _docker_build(argv: list[str]) -> None:
    env = dict(os.environ, DOCKER_BUILDKIT="0")
    done = subprocess.run(["docker", "build", "-q", *argv], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"docker build {' '.join(argv)} failed:\n{done.stdout}{done.stderr}")


def build_python_base() -> None:
    if cached(PYTHON_BASE):
        return
    build_base()
    with tempfile.TemporaryDirectory() as context:
        certs = Path(context) / "certs"
        certs.mkdir()
        for cert in HOST_CAS.glob("*.crt") if HOST_CAS.is_dir() else ():
            shutil.copy(cert, certs / cert.name)
        (Path(context) / "Dockerfile").write_text(PYTHON_DOCKERFILE)
        _docker_build(["-t", PYTHON_BASE, context])
    say(f"image {PYTHON_BASE}: built on {DEBIAN}")


def build(revision: str = "test") -> float | None:
    """Build ``IMAGE`` unless cached; the seconds it took (None: it was cached). The
    revision is part of the cache key: it is baked in (``shipbot --version``, the "is up"
    post), so an image built for another revision is built again, not reused.

    One build at a time (``one_builder``): three modules need the image, on two workers."""
    with one_builder("self-image"):
        return _build(revision)


def _build(revision: str) -> float | None:
    build_python_base()
    label = f"{inputs_digest()}/{revision}"
    probe = subprocess.run(
        [
            "docker",
            "image",
            "inspect",
            "--format",
            f'{{{{index .Config.Labels "{LABEL}"}}}}',
            IMAGE,
        ],
        capture_output=True,
        text=True,
    )
    if probe.returncode == 0 and probe.stdout.strip() == label:
        return None
    started = time.monotonic()
    _docker_build(
        [
            "--build-arg",
            f"BASE={PYTHON_BASE}",
            "--build-arg",
            f"REVISION={revision}",
            "--label",
            f"{LABEL}={label}",
            "-t",
            IMAGE,
            str(ROOT),
        ]
    )
    return time.monotonic() - started


if __name__ == "__main__":
    took = build()
    say(f"image {IMAGE}: " + ("cached" if took is None else f"built in {took:.1f}s"))
