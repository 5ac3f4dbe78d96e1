"""First contact: seconds from a fresh Debian machine to the demo's console.

A fresh Debian bookworm "machine" is a Docker-in-Docker container (the flags of
tests/multinode.py) made from the tests' Python base (Debian + python3-venv + the host's CA
certificates, so pip and apt reach their mirrors as here): no Docker engine, no venv, no
images, a cold apt and pip. The project is copied in as `git archive HEAD` and
`./dev demo </dev/null` runs to the console, which leaves at end of input. Printed: the whole
time, each step's time as `./dev` reports it, and the ratio to the goal (90 s).

Beside it, the baseline: the same container running `apt-get install docker.io` and
`pip install -r requirements.lock` alone (what no first run can skip), so the ratio says
how much shipbot's own set-up adds.

    .venv/bin/python benchmarks/first_run.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._unique import RUN  # noqa: E402
from tests.multinode import NODE_FLAGS  # noqa: E402
from tests.self_image import PYTHON_BASE, build_python_base  # noqa: E402

GOAL_SECONDS = 90.0
# what a machine's init would do: /sys and the cgroups writable for the inner dockerd
PREPARE = (
    "mount -o remount,rw /sys 2>/dev/null || true; "
    'for d in /sys/fs/cgroup/*; do mount -o remount,rw,bind "$d" 2>/dev/null || true; done; '
)
DEMO = "cd /opt/shipbot && ./dev demo </dev/null"
BASELINE = (
    "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
    "docker.io iptables git busybox-static >/dev/null && python3 -m venv /tmp/venv "
    "&& /tmp/venv/bin/pip install -q -r /opt/shipbot/requirements.lock"
)


def run(argv: list[str], **options) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, **options)


def fresh_machine(name: str, archive: Path) -> None:
    run(["docker", "rm", "-f", "-v", name])
    started = run(
        ["docker", "run", "-d", "--name", name, *NODE_FLAGS, "-v", "/var/lib/docker",
         "--entrypoint", "sleep", PYTHON_BASE, "infinity"]
    )  # fmt: skip
    if started.returncode != 0:
        raise SystemExit(f"cannot start the fresh machine: {started.stderr}")
    run(["docker", "exec", name, "mkdir", "-p", "/opt/shipbot"], check=True)
    with archive.open("rb") as tar:
        subprocess.run(
            ["docker", "exec", "-i", name, "tar", "-x", "-C", "/opt/shipbot"],
            stdin=tar,
            check=True,
        )


def timed(name: str, script: str) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    done = run(["docker", "exec", name, "sh", "-c", PREPARE + script], timeout=1800)
    return time.perf_counter() - started, done


def main() -> None:
    build_python_base()
    tag = RUN
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "shipbot.tar"
        subprocess.run(
            ["git", "-C", str(ROOT), "archive", "--format=tar", "-o", str(archive), "HEAD"],
            check=True,
        )
        figures = {}
        for label, script in (("baseline", BASELINE), ("demo", DEMO)):
            name = f"bench-first-{label}-{tag}"
            try:
                fresh_machine(name, archive)
                seconds, done = timed(name, script)
            finally:
                run(["docker", "rm", "-f", "-v", name])
            if done.returncode != 0:
                raise SystemExit(f"{label} failed ({done.returncode}):\n{done.stderr[-3000:]}")
            figures[label] = seconds
            steps = [line for line in done.stderr.splitlines() if ": " in line][:12]
            print(f"{label}: {seconds:.1f} s" + "".join(f"\n  {s}" for s in steps))
    demo, baseline = figures["demo"], figures["baseline"]
    print(f"first run to the console: {demo:.1f} s (goal < {GOAL_SECONDS:.0f} s)")
    print(f"ratio demo / baseline (apt docker.io + pip install alone): {demo / baseline:.2f}")
    print(f"ratio demo / goal: {demo / GOAL_SECONDS:.2f}")


if __name__ == "__main__":
    main()
