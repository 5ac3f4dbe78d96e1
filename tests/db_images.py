"""Stand-ins for the official postgres, mariadb and redis images, built from Debian packages.

Nothing can be pulled here, so `./dev` builds these once (cached by tag) on a debootstrap base:
`python -m tests.db_images`. Each keeps the official image's environment contract
(tests/dbimages/*/entrypoint.sh), so shipbot drives them exactly as it drives the real ones.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

BASE = "shipbot-test/debian:bookworm"
IMAGES = {
    "postgres": "shipbot-test/postgres:15",
    "mariadb": "shipbot-test/mariadb:10.11",
    "redis": "shipbot-test/redis:7",
}
CONTEXTS = Path(__file__).parent / "dbimages"
LABEL = "shipbot.test.context"
SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@contextlib.contextmanager
def one_builder(what: str) -> Iterator[None]:
    """One build of ``what`` at a time on this machine (a lock file): the real-engine tier
    runs its modules on parallel workers, and the second to need an image then finds the
    first one's cached instead of building the same tag beside it."""
    with (Path(tempfile.gettempdir()) / f"shipbot-test-{what}.lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # released when the file closes
        yield


def cached(tag: str, context: Path | None = None) -> bool:
    """The tag exists (and, given its build context, was built from that context as it is)."""
    argv = ["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", tag]
    probe = subprocess.run(argv, capture_output=True, text=True)
    if probe.returncode != 0:
        return False
    labels = json.loads(probe.stdout) or {}
    return context is None or labels.get(LABEL) == digest(context)


def digest(context: Path) -> str:
    """What an image is built from: a changed entrypoint builds it again."""
    sha = hashlib.sha256()
    for path in sorted(context.iterdir()):
        sha.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return sha.hexdigest()[:16]


def mirror() -> str:
    """The Debian mirror this host's apt uses (never a name written here)."""
    for path in SOURCES:
        if not path.exists():
            continue
        text = path.read_text()
        found = re.search(r"^URIs:\s*(\S+/debian)/?\s*$", text, re.M) or re.search(
            r"^deb\s+(?:\[[^]]*\]\s+)?(\S+/debian)/?\s+bookworm\b", text, re.M
        )
        if found:
            return found.group(1)
    raise SystemExit("no Debian mirror in /etc/apt: cannot debootstrap the images' base")


def build_base() -> None:
    if cached(BASE):
        say(f"image {BASE}: cached")
        return
    with tempfile.TemporaryDirectory() as root:
        subprocess.run(
            ["debootstrap", "--variant=minbase", "bookworm", root, mirror()],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(
            ["docker", "import", "-", BASE], stdin=tar.stdout, check=True, stdout=subprocess.DEVNULL
        )
        if tar.wait() != 0:
            raise SystemExit("tar of the debootstrap root failed")
    say(f"image {BASE}: debootstrapped")


def build_images() -> None:
    """Builds the missing ones side by side (each is mostly apt-get's download and unpack)."""
    env = dict(os.environ, DOCKER_BUILDKIT="0")
    with contextlib.ExitStack() as stack:
        running = {}
        for kind, tag in IMAGES.items():
            context = CONTEXTS / kind
            if cached(tag, context):
                say(f"image {tag}: cached")
                continue
            log = stack.enter_context(tempfile.TemporaryFile())
            label = f"{LABEL}={digest(context)}"
            argv = ["docker", "build", "-q", "--label", label, "-t", tag, str(context)]
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
            running[tag] = (process, log)
        failed = []
        for tag, (process, log) in running.items():
            if process.wait() != 0:
                log.seek(0)
                say(log.read().decode(errors="replace"))
                failed.append(tag)
            else:
                say(f"image {tag}: built from Debian packages")
    if failed:
        raise SystemExit(f"building {', '.join(failed)} failed")


def main() -> None:
    if all(cached(tag, CONTEXTS / kind) for kind, tag in IMAGES.items()):
        say(f"images {', '.join(IMAGES.values())}: cached")
        return
    build_base()
    build_images()


if __name__ == "__main__":
    main()
