"""A backup of a Postgres database of ≥ 1 GB of rows: shipbot's `backup run` (pg_dump -Fc
streamed out through the engine's exec stream, gzip, a multipart upload into moto on
loopback, verified) against a raw `pg_dump -Fc | gzip > /dev/null` in the same container,
and the bot's peak RSS growth while it backs up.

The bot runs in a child process (``--child``) that opens the dispatcher, warms boto3 up,
then samples its own RSS (/proc/self/status, every 10 ms) during the backup and prints
what it saw as JSON. The database comes from the image ./dev builds
(shipbot-test/postgres:15), filled with generate_series until its table passes 1 GiB.

Usage: python benchmarks/backup_stream.py [--gib 1.0] [--rounds 2]. Goals: time ratio ≤ 1.25, RSS
growth < 64 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import docker
import docker.errors

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._unique import RUN  # noqa: E402
from commands.dispatch import ChatRequest, Dispatcher  # noqa: E402
from commands.replies import Result  # noqa: E402
from core.data.s3 import S3Store  # noqa: E402
from tests.moto_s3 import KEYS, make_bucket, moto_server  # noqa: E402

BUCKET = "bench-backups"
BATCH_ROWS = 2_000_000  # ≈ 270 MB of table per INSERT
MAX_BATCHES = 12
FILL_SECONDS = 900.0
SAMPLE_SECONDS = 0.01
SHIPBOT_YML = """\
admins: [console:bench]
data:
  images: {{postgres: "shipbot-test/postgres:{{version}}"}}
backups:
  s3:
    endpoint: "{endpoint}"
    bucket: {bucket}
    access_key_env: TEST_S3_ACCESS
    secret_key_env: TEST_S3_SECRET
    timeout_seconds: 120
"""


async def say(bot: Dispatcher, text: str) -> Result:
    replies = await bot.run(ChatRequest("console", "console:bench", "console", text))
    results = [r for r in replies if isinstance(r, Result)]
    if len(results) != 1:
        raise SystemExit(f"`{text}` answered {replies}")
    return results[0]


def rss_kb(field: str = "VmRSS") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def child(home: Path, name: str) -> None:
    """One `backup run` in this process; prints seconds and RSS figures as JSON."""
    bot = Dispatcher.open(home)
    assert bot.config.backups is not None
    S3Store(bot.config.backups.s3).close()  # boto3's import and first client: not the backup
    baseline = rss_kb()
    peak = [baseline]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(SAMPLE_SECONDS):
            peak[0] = max(peak[0], rss_kb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    try:
        outcome = asyncio.run(say(bot, f"backup run {name}"))
    finally:
        seconds = time.monotonic() - started
        done.set()
        sampler.join()
    bot.close()
    figures = {
        "ok": outcome.ok,
        "title": outcome.title,
        "details": list(outcome.details),
        "size": outcome.fields.get("size", ""),
        "seconds": seconds,
        "baseline_kb": baseline,
        "peak_kb": max(peak[0], rss_kb()),
        "hwm_kb": rss_kb("VmHWM"),
    }
    print(json.dumps(figures))


def container_of(client: Any, service: str) -> Any:
    (task,) = client.api.tasks(filters={"service": service, "desired-state": "running"})
    return client.containers.get(task["Status"]["ContainerStatus"]["ContainerID"])


def psql(container: Any, user: str, sql: str) -> str:
    code, out = container.exec_run(["psql", "-v", "ON_ERROR_STOP=1", "-U", user, "-At", "-c", sql])
    if code != 0:
        raise SystemExit(f"psql failed: {out.decode(errors='replace')}")
    return out.decode().strip()


def fill(container: Any, user: str, gib: float) -> int:
    """Rows until the table passes ``gib`` GiB; its size in bytes."""
    psql(container, user, "CREATE TABLE big (id bigint, a text, b text, c text)")
    deadline = time.monotonic() + FILL_SECONDS
    size = 0
    for batch in range(MAX_BATCHES):
        start = batch * BATCH_ROWS + 1
        rows = f"generate_series({start}, {start + BATCH_ROWS - 1}) g"  # integers only
        insert = "INSERT INTO big SELECT g, md5(g::text), md5((g + 1)::text), md5((g + 2)::text)"
        psql(container, user, f"{insert} FROM {rows}")
        size = int(psql(container, user, "SELECT pg_total_relation_size('big')"))
        if size >= gib * 1024**3:
            return size
        if time.monotonic() > deadline:
            break
    raise SystemExit(f"the table reached only {size / 1024**3:.2f} GiB in time")


def raw_dump(container: Any, user: str) -> float:
    script = f"pg_dump -Fc -U {user} -d {user} | gzip > /dev/null"
    started = time.monotonic()
    code, out = container.exec_run(["bash", "-o", "pipefail", "-c", script])
    seconds = time.monotonic() - started
    if code != 0:
        raise SystemExit(f"raw pg_dump failed: {out.decode(errors='replace')}")
    return seconds


def bot_backup(home: Path, name: str) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--child", str(home), name]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=1800, env=os.environ)
    if done.returncode != 0:
        raise SystemExit(f"the bot's backup failed:\n{done.stderr}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    if not figures["ok"]:
        raise SystemExit(f"the bot's backup failed: {figures['title']} {figures['details']}")
    return figures


def cleanup(client: Any, name: str) -> None:
    with contextlib.suppress(docker.errors.NotFound):
        client.api.remove_service(f"db-{name}")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            client.api.remove_volume(f"db-{name}-data")
            return
        except docker.errors.NotFound:
            return
        except docker.errors.APIError:  # in use until the container is gone
            time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--prefix", default="bench", help="of the database's name")
    parser.add_argument("--child", nargs=2, metavar=("HOME", "NAME"))
    args = parser.parse_args()
    os.environ.update(KEYS)
    if args.child:
        child(Path(args.child[0]), args.child[1])
        return
    client = docker.from_env()
    name = f"{args.prefix}{RUN}"
    with tempfile.TemporaryDirectory() as tmp, moto_server() as endpoint:
        home = Path(tmp)
        (home / "shipbot.yml").write_text(SHIPBOT_YML.format(endpoint=endpoint, bucket=BUCKET))
        make_bucket(endpoint, BUCKET)
        try:
            bot = Dispatcher.open(home)
            made = asyncio.run(say(bot, f"db create postgres {name} --version 15"))
            bot.close()
            if not made.ok:
                raise SystemExit(f"db create failed: {made}")
            container = container_of(client, f"db-{name}")
            started = time.monotonic()
            size = fill(container, name, args.gib)
            print(f"table: {size / 1024**3:.2f} GiB of rows in {time.monotonic() - started:.0f}s")
            raws, bots = [], []
            for round_ in range(1, args.rounds + 1):  # alternated: the host's noise hits both
                raws.append(raw_dump(container, name))
                print(f"round {round_}: raw pg_dump -Fc | gzip > /dev/null: {raws[-1]:.1f}s")
                bots.append(bot_backup(home, name))
                figures = bots[-1]
                print(
                    f"round {round_}: shipbot backup run: {figures['seconds']:.1f}s, "
                    f"{figures['size']} stored in moto ({figures['title']})"
                )
            best = min(bots, key=lambda f: f["seconds"])
            print(
                f"time ratio shipbot / raw (best of {args.rounds} each): "
                f"{best['seconds']:.1f}s / {min(raws):.1f}s = "
                f"{best['seconds'] / min(raws):.2f} (goal ≤ 1.25)"
            )
            worst = max(bots, key=lambda f: f["peak_kb"] - f["baseline_kb"])
            growth = (worst["peak_kb"] - worst["baseline_kb"]) / 1024
            hwm = (worst["hwm_kb"] - worst["baseline_kb"]) / 1024
            print(
                f"bot peak RSS growth (worst run): {growth:.1f} MB sampled every "
                f"{SAMPLE_SECONDS * 1000:.0f} ms (VmHWM: {hwm:.1f} MB; goal < 64 MB); "
                f"baseline {worst['baseline_kb'] / 1024:.1f} MB"
            )
        finally:
            cleanup(client, name)
            client.close()


if __name__ == "__main__":
    main()
