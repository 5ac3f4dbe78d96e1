"""`status` of 3 servers × 50 services, one server unreachable ÷ all three reachable.

Three real servers: Docker-in-Docker nodes with sshd (tests/multinode.py), each its own
single-node swarm, added from chat with `server add` as a user would (shipbot.yml
`local: false`: nothing runs beside the bot). 50 apps per server, each with a live release,
run as one service with one busybox task, made with shipbot's own builder. Two control
planes read them, copies of one store:

- "reachable": the three servers as added;
- "one unreachable": the third server's record points at a port that accepts the TCP
  connection and never says a word, so SSH's banner time-out (10 s) is really paid.

Alternating, median of N runs each, through the chat path (parse, authorise, read every
server, the table and the down-node lines). Prints the medians, the first status after the
outage began (the one that pays the time-out), and unreachable ÷ reachable. Goal ≤ 1.5.
Everything is removed at the end (the nodes with their swarms), also on failure or Ctrl-C.

    .venv/bin/python benchmarks/status_fleet.py [--services 50] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._signals import unwind_on_sigterm  # noqa: E402
from commands.dispatch import ChatRequest, Dispatcher  # noqa: E402
from commands.replies import Message, Result, Table  # noqa: E402
from core.appspec import AppSpec  # noqa: E402
from core.deploy.spec import image_ref, service_spec  # noqa: E402
from core.servers import keys  # noqa: E402
from core.store import App  # noqa: E402
from core.swarm import running_tasks  # noqa: E402
from tests.multinode import Cluster, build  # noqa: E402

USER = "console:bench"
RUN = uuid.uuid4().hex[:4]
PREFIX = f"zsf{RUN}"  # every node, app, service and server this run makes starts with it
SUBNET = "192.168.163.0/24"
ENV = "production"
BASE = "busybox:latest"
EDGE = "shipbot-test/traefik:v3"
SERVERS = [f"{PREFIX}-{n}" for n in (1, 2, 3)]
AWAY = SERVERS[2]


def say(bot: Dispatcher, text: str, stdin: str | None = None):
    return bot.run(ChatRequest("console", USER, "bench", text, stdin))


def home_for(folder: Path) -> Path:
    folder.mkdir()
    (folder / "shipbot.yml").write_text(
        f"admins: [{USER}]\nlocal: false\n"
        f"edge: {{image: {EDGE}, acme: {{ca_server: 'https://127.0.0.1:9/dir'}}}}\n"
    )
    return folder


async def add_servers(bot: Dispatcher, up: Cluster, private: str) -> None:
    stored = await say(bot, f"ssh-key import {PREFIX}", private)
    assert any(isinstance(r, Result) and r.ok for r in stored), stored
    for server, node in zip(SERVERS, up.nodes, strict=True):
        added = await say(bot, f"server add {server} ssh://root@{node.ip} --key {PREFIX}")
        done = [r for r in added if isinstance(r, Result)]
        if not (done and done[0].ok):
            raise SystemExit(f"server add {server} failed: {added[-3:]}")
        print(f"  {server}: added ({node.ip})", flush=True)


def apps_of(server: str, count: int) -> list[str]:
    return [f"{server.replace('-', '')}x{i:02d}" for i in range(count)]


async def register(bot: Dispatcher, folder: Path, count: int) -> None:
    """50 apps per server in the store with release 1 live there, and their services."""
    store = bot.engine.store
    plane = bot.engine.plane
    for server in SERVERS:
        swarm = await plane.servers.client(server)
        for app in apps_of(server, count):
            store.add_app(App(app, "path", str(folder), None, USER, time.time()))
            spec = service_spec(
                AppSpec(name=app, image=BASE, command=["sleep", "86400"], replicas=1),
                ENV,
                1,
                image_ref(app, 1),
            )
            del spec["TaskTemplate"]["Networks"]  # 50 tasks need no overlay
            release = store.new_release(
                app=app,
                env=ENV,
                image_for=lambda n, a=app: image_ref(a, n),
                source_ref=None,
                deployed_by=USER,
            )
            store.update_release(release.id, spec=spec)
            store.mark_live(release.id, "benchmark")
            store.set_env_server(app, ENV, server, time.time())
            await asyncio.to_thread(swarm.tag, BASE, image_ref(app, 1))
            await asyncio.to_thread(swarm.create_service, spec)
        print(f"  {server}: {count} services created", flush=True)


async def wait_running(bot: Dispatcher, count: int, deadline: float) -> None:
    plane = bot.engine.plane
    while True:
        up = 0
        for server in SERVERS:
            swarm = await plane.servers.client(server)
            tasks = await asyncio.to_thread(swarm.live_tasks)
            up += len({t["ServiceID"] for t in running_tasks(tasks)})
        print(f"  {up}/{count * len(SERVERS)} tasks running", flush=True)
        if up >= count * len(SERVERS):
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"only {up} tasks started in time")
        await asyncio.sleep(5)


def point_away(home: Path, port: int) -> None:
    """The copy's third server answers TCP on ``port`` and never speaks SSH."""
    with contextlib.closing(sqlite3.connect(home / "shipbot.db")) as db, db:
        db.execute(
            "UPDATE servers SET url = ? WHERE name = ?", (f"ssh://root@127.0.0.1:{port}", AWAY)
        )


async def timed_status(bot: Dispatcher, rows: int, away: bool) -> float:
    started = time.perf_counter()
    replies = await say(bot, "status")
    elapsed = time.perf_counter() - started
    tables = [r for r in replies if isinstance(r, Table)]
    shown = [row for row in tables[0].rows if row[0].startswith(PREFIX)] if tables else []
    if len(shown) != rows or any(row[3] != "1/1 running" for row in shown):
        raise SystemExit(f"status did not show {rows} services 1/1 running: {replies[:3]}")
    lines = [r.text for r in replies if isinstance(r, Message)]
    named = [line for line in lines if f"server {AWAY} unreachable" in line]
    if len(named) != (1 if away else 0):
        raise SystemExit(f"status named {AWAY} {len(named)} times: {lines}")
    return elapsed


async def main(count: int, runs: int, wait: float) -> None:
    build()
    private = keys.generate()
    public = keys.public_line(keys.load(private), "shipbot-bench")
    up = Cluster(PREFIX, SUBNET)
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(64)  # connections complete in the kernel; nobody ever answers
    times: dict[str, list[float]] = {"reachable": [], "one unreachable": []}
    with tempfile.TemporaryDirectory() as tmp:
        bots: list[Dispatcher] = []
        try:
            started = time.monotonic()
            up.up(public, [BASE, EDGE])
            print(f"3 nodes up in {time.monotonic() - started:.0f}s", flush=True)
            reach_home = home_for(Path(tmp) / "reachable")
            bot = Dispatcher.open(reach_home)
            await add_servers(bot, up, private)
            await register(bot, Path(tmp), count)
            await wait_running(bot, count, time.monotonic() + wait)
            bot.close()
            away_home = Path(tmp) / "away"
            shutil.copytree(reach_home, away_home)
            point_away(away_home, blackhole.getsockname()[1])
            reach, away = Dispatcher.open(reach_home), Dispatcher.open(away_home)
            bots += [reach, away]
            await timed_status(reach, count * 3, False)  # warm: imports, three connections
            first = await timed_status(away, count * 2, True)  # pays the SSH time-out
            print(f"first status with {AWAY} unreachable: {first * 1000:.0f} ms", flush=True)
            for run in range(runs):
                times["reachable"].append(await timed_status(reach, count * 3, False))
                times["one unreachable"].append(await timed_status(away, count * 2, True))
                line = "  ".join(f"{k} {v[-1] * 1000:.0f} ms" for k, v in times.items())
                print(f"run {run + 1}: {line}", flush=True)
        finally:
            for each in bots:
                each.close()
            blackhole.close()
            print("removing the nodes (their swarms, services and images go with them)")
            up.down()
    reachable, unreachable = (statistics.median(times[k]) for k in times)
    print(
        f"medians over {runs} runs, 3 servers x {count} services: all reachable "
        f"{reachable * 1000:.0f} ms, one unreachable {unreachable * 1000:.0f} ms "
        f"(the first after the outage began: {first * 1000:.0f} ms)"
    )
    print(f"one unreachable / all reachable = {unreachable / reachable:.2f} (goal ≤ 1.5)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--deadline", type=float, default=600, help="seconds to wait for tasks")
    args = parser.parse_args()
    unwind_on_sigterm()
    asyncio.run(main(args.services, args.runs, args.deadline))
