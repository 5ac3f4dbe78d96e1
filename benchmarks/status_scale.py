"""`status` over 200 services against `docker service ls` on the same swarm.

200 apps are registered in a fresh store, each with a live release, and run as one service
each, made with shipbot's own builder (its labels, release image tag, start-first update
config) with one busybox task. Then, alternating, median of N runs each:

- shipbot's `status` through the chat path (parse, authorise, read the store, one services
  list and one tasks list for the whole swarm, grouped in memory, the table);
- `docker service ls` (the CLI, a process of its own, as an operator would type it);
- for reference, the pass `status` made before: one tasks list per service.

Prints the medians and status ÷ service ls. Goal ≤ 2. Every service, tag and folder it made
is removed at the end, also on failure or Ctrl-C. Creating 200 tasks on a small machine
takes a few minutes; ``--deadline`` bounds the wait.

    .venv/bin/python benchmarks/status_scale.py [--services 200] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker
import docker.errors

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._signals import unwind_on_sigterm  # noqa: E402
from benchmarks._unique import RUN  # noqa: E402
from commands.dispatch import ChatRequest, Dispatcher  # noqa: E402
from commands.replies import Table  # noqa: E402
from core.appspec import AppSpec  # noqa: E402
from core.deploy.spec import image_ref, service_spec  # noqa: E402
from core.deploy.status import summarize  # noqa: E402
from core.names import LABEL_APP  # noqa: E402
from core.store import App  # noqa: E402
from core.swarm import running_tasks  # noqa: E402
from core.swarm.docker_api import DockerSwarm  # noqa: E402

USER = "console:bench"
PREFIX = f"ztb{RUN}x"  # every app, service and tag this run makes starts with it
ENV = "production"
BASE = "busybox:latest"


def names(count: int) -> list[str]:
    return [f"{PREFIX}{i:03d}" for i in range(count)]


def register(bot: Dispatcher, folder: Path, apps: list[str]) -> list[dict]:
    """Each app in the store with release 1 live; returns the service specs to create."""
    store = bot.engine.store
    specs = []
    for app in apps:
        store.add_app(App(app, "path", str(folder), None, USER, time.time()))
        spec = service_spec(
            AppSpec(name=app, image=BASE, command=["sleep", "86400"], replicas=1),
            ENV,
            1,
            image_ref(app, 1),
        )
        # off shipbot's overlay network: 200 tasks would take most of its /24, which the
        # other apps on this engine share
        del spec["TaskTemplate"]["Networks"]
        release = store.new_release(
            app=app,
            env=ENV,
            image_for=lambda n, a=app: image_ref(a, n),
            source_ref=None,
            deployed_by=USER,
        )
        store.update_release(release.id, spec=spec)
        store.mark_live(release.id, "benchmark")
        specs.append(spec)
    return specs


def wait_running(api: docker.APIClient, apps: list[str], deadline: float) -> int:
    """Poll until every app's task runs (or the deadline); returns how many run."""
    wanted = set(apps)
    up = 0
    while time.monotonic() < deadline:
        tasks = api.tasks(filters={"label": LABEL_APP, "desired-state": "running"})
        services = {
            s["ID"]: s["Spec"]["Labels"][LABEL_APP]
            for s in api.services(filters={"label": LABEL_APP})
            if s["Spec"]["Labels"][LABEL_APP] in wanted
        }
        up = len(
            {services[t["ServiceID"]] for t in running_tasks(tasks) if t["ServiceID"] in services}
        )
        print(f"  {up}/{len(apps)} tasks running", flush=True)
        if up == len(apps):
            break
        time.sleep(5)
    return up


def cleanup(api: docker.APIClient, apps: list[str], timeout: float = 180.0) -> None:
    mine = set(apps)
    for service in api.services(filters={"label": LABEL_APP}):
        if service["Spec"]["Labels"].get(LABEL_APP) in mine:
            with contextlib.suppress(docker.errors.NotFound):
                api.remove_service(service["ID"])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [
            c
            for c in api.containers(all=True, filters={"label": LABEL_APP})
            if c["Labels"].get(LABEL_APP) in mine
        ]
        if not left:
            break
        time.sleep(2)
    for app in apps:
        with contextlib.suppress(docker.errors.APIError):
            api.remove_image(image_ref(app, 1), noprune=True)


async def shipbot_status(bot: Dispatcher, count: int) -> float:
    started = time.perf_counter()
    replies = await bot.run(ChatRequest("console", USER, "bench", "status"))
    elapsed = time.perf_counter() - started
    tables = [r for r in replies if isinstance(r, Table)]
    mine = [row for row in tables[0].rows if row[0].startswith(PREFIX)] if tables else []
    if len(mine) != count or any(row[3] != "1/1 running" for row in mine):
        raise SystemExit(f"status did not show {count} services with 1/1 running: {replies[:3]}")
    return elapsed


def service_ls(count: int) -> float:
    started = time.perf_counter()
    done = subprocess.run(["docker", "service", "ls"], capture_output=True, text=True, check=True)
    elapsed = time.perf_counter() - started
    shown = [line for line in done.stdout.splitlines() if f" {PREFIX}" in line]
    if len(shown) != count:
        raise SystemExit(f"docker service ls showed {len(shown)} of {count} services")
    return elapsed


def batched(swarm: DockerSwarm, count: int) -> float:
    """The pass status makes now, alone: the list, every live task at once, grouped."""
    started = time.perf_counter()
    rows = summarize(swarm.services(), swarm.live_tasks(), set(names(count)))
    elapsed = time.perf_counter() - started
    if sum(row.running for row in rows) < count:
        raise SystemExit(f"the batched pass counted {sum(row.running for row in rows)} tasks")
    return elapsed


def per_service(swarm: DockerSwarm, count: int) -> float:
    """The pass status made before: the list, then the tasks of each of its apps' services
    (others' services on a shared engine come and go: status never asked for theirs)."""
    mine = set(names(count))
    started = time.perf_counter()
    running = [
        len(running_tasks(swarm.tasks(s["Spec"]["Name"])))
        for s in swarm.services()
        if s["Spec"]["Labels"].get(LABEL_APP) in mine
    ]
    elapsed = time.perf_counter() - started
    if sum(running) < count:
        raise SystemExit(f"the per-service pass counted {sum(running)} running tasks")
    return elapsed


async def main(count: int, runs: int, wait: float) -> None:
    apps = names(count)
    client = docker.from_env()
    api = client.api
    times: dict[str, list[float]] = {
        "status": [],
        "service ls": [],
        "batched pass": [],
        "per service": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        (home / "shipbot.yml").write_text(f"admins: [{USER}]\n")
        bot = Dispatcher.open(home)
        swarm = DockerSwarm.connect()
        try:
            specs = register(bot, Path(tmp), apps)
            started = time.monotonic()
            for app, spec in zip(apps, specs, strict=True):
                api.tag(BASE, *image_ref(app, 1).split(":"))
                swarm.create_service(spec)
            print(f"created {count} services in {time.monotonic() - started:.1f}s", flush=True)
            up = wait_running(api, apps, time.monotonic() + wait)
            print(f"{up}/{count} tasks running after {time.monotonic() - started:.1f}s")
            if up != count:
                raise SystemExit(f"only {up} of {count} tasks started within {wait:.0f}s")
            await shipbot_status(bot, count)  # warm: imports, first connection
            service_ls(count)
            for run in range(runs):
                times["status"].append(await shipbot_status(bot, count))
                times["service ls"].append(service_ls(count))
                times["batched pass"].append(batched(swarm, count))
                times["per service"].append(per_service(swarm, count))
                line = "  ".join(f"{k} {v[-1] * 1000:.0f} ms" for k, v in times.items())
                print(f"run {run + 1}: {line}", flush=True)
        finally:
            swarm.close()
            bot.close()
            print("removing the services and tags", flush=True)
            cleanup(api, apps)
            client.close()
    status, ls, pass_now, pass_before = (statistics.median(times[k]) for k in times)
    print(
        f"medians over {runs} runs, {count} services: shipbot status {status * 1000:.0f} ms, "
        f"docker service ls {ls * 1000:.0f} ms; the engine pass alone: batched "
        f"{pass_now * 1000:.0f} ms, one tasks call per service {pass_before * 1000:.0f} ms"
    )
    print(f"status / docker service ls = {status / ls:.2f} (goal ≤ 2)")
    print(f"one tasks call per service / batched = {pass_before / pass_now:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--deadline", type=float, default=600, help="seconds to wait for tasks")
    args = parser.parse_args()
    unwind_on_sigterm()
    asyncio.run(main(args.services, args.runs, args.deadline))
