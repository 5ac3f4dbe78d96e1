"""Slack ack latency: shipbot's HTTP mode vs a bare Bolt app that only acks, side by side.

Both run as their own processes on loopback, against the same local fake Web API. Each gets
20 warm-up requests, then 200 signed `/ship help` slash commands, 50 at a time, in two
interleaved rounds; each round starts once shipbot has posted every reply to the last.
Prints p50/p99 of both, the ratios, and shipbot's idle and peak RSS, with a ✅ or ❌ per
goal (issue 24): p50 and p99 ratios <= 1.2, idle RSS < 80 MB.

shipbot runs as a user would run it whole: Slack (HTTP mode), Discord (connected to a
loopback gateway, benchmarks/_fake_gateway.py, through benchmarks/_discord_serve.py, and the
fake REST API), git webhooks on the
same server, the watchers, and schedules (the daily digest, the backup report). Its idle RSS
is read twice before any request: 1 s after the Discord client has identified, and again
SETTLE seconds later (120 by default; ``--settle N``), once its watchers have run their first
rounds (threads keep what they allocated); the goal is held against the second, the settled
idle. ``--slack-only`` leaves Discord, webhooks and the schedules out, as this benchmark
measured before.

    .venv/bin/python benchmarks/slack_ack.py
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import statistics
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._fake_gateway import FakeGateway  # noqa: E402
from tests.fake_discord_api import FakeDiscord  # noqa: E402
from tests.fake_slack import FakeSlack  # noqa: E402
from tests.test_serve import free_port, spawn_cli  # noqa: E402

SECRET = "bench-signing-secret"
REQUESTS, CONCURRENCY, WARMUP = 200, 50, 20
RATIO_GOAL, IDLE_GOAL_MB = 1.2, 80.0
SETTLE_SECONDS = 120.0
SCHEDULES = (
    "digest: '0 8 * * *'\n"
    "backups: {s3: {endpoint: 'http://127.0.0.1:9', bucket: bench}, report: '0 9 * * 1'}\n"
)


def signed_slash(text: str) -> tuple[bytes, dict[str, str]]:
    body = urllib.parse.urlencode(
        {
            "command": "/ship",
            "text": text,
            "user_id": "UBENCH",
            "channel_id": "CBENCH",
            "team_id": "T1",
            "api_app_id": "A1",
            "trigger_id": "t",
            "response_url": "http://127.0.0.1:9/r",
        }
    )
    stamp = str(int(time.time()))
    digest = hmac.new(SECRET.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256)
    return body.encode(), {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": "v0=" + digest.hexdigest(),
        "Content-Type": "application/x-www-form-urlencoded",
    }


async def wait_listening(port: int) -> None:
    for _ in range(300):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


async def batch(url: str, count: int, concurrency: int) -> list[float]:
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession() as session:

        async def one() -> None:
            body, headers = signed_slash("help")
            async with gate:
                started = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        raise SystemExit(f"{url} answered {response.status}")
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(one() for _ in range(count)))
    return latencies


async def drained(fake: FakeSlack, replies: int) -> None:
    """Until shipbot has posted ``replies`` replies (one per `help`), 60 s at most."""
    for _ in range(1200):
        if len(fake.of("chat.postMessage")) >= replies:
            return
        await asyncio.sleep(0.05)
    raise SystemExit(f"shipbot posted {len(fake.of('chat.postMessage'))} of {replies} replies")


def rss_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] * 1000


def mark(met: bool) -> str:
    return "✅" if met else "❌"


async def identified(gateway: FakeGateway, ship: asyncio.subprocess.Process) -> None:
    for _ in range(600):  # 30 s at most
        if gateway.identified or ship.returncode is not None:
            break
        await asyncio.sleep(0.05)
    if not gateway.identified:
        raise SystemExit("shipbot's Discord client never identified to the loopback gateway")


async def main() -> None:
    whole = "--slack-only" not in sys.argv
    settle = SETTLE_SECONDS
    if "--settle" in sys.argv:
        settle = float(sys.argv[sys.argv.index("--settle") + 1])
    fake = await FakeSlack().start()
    discord_api, gateway = await FakeDiscord().start(), await FakeGateway().start()
    ship_port, bare_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as home:
        Path(home, "shipbot.yml").write_text(
            "admins: [slack:UBENCH]\n" + (SCHEDULES if whole else "")
        )
        env = {
            **os.environ,
            "SHIPBOT_HOME": home,
            "SLACK_BOT_TOKEN": "xoxb-bench",
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": fake.base_url,
            "SHIPBOT_HTTP_HOST": "127.0.0.1",
            "SHIPBOT_HTTP_PORT": str(ship_port),
            "SHIPBOT_LOG_LEVEL": "ERROR",
        }
        if whole:
            env |= {
                "DISCORD_TOKEN": "bench-discord-token",
                "DISCORD_API_URL": discord_api.base,
                "SHIPBOT_WEBHOOKS": "1",
            }
            ship = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "benchmarks._discord_serve",
                gateway.url,
                cwd=ROOT,
                env=env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        else:
            ship = await spawn_cli(env)
        bare = await asyncio.create_subprocess_exec(
            sys.executable,
            str(ROOT / "benchmarks" / "_bare_bolt_app.py"),
            str(bare_port),
            SECRET,
            fake.base_url,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            await wait_listening(ship_port)
            await wait_listening(bare_port)
            if whole:
                await identified(gateway, ship)
            await asyncio.sleep(1.0)
            first = rss_mb(ship.pid, "VmRSS")
            parts = [rss_mb(ship.pid, f) for f in ("RssAnon", "RssFile")]
            await asyncio.sleep(settle)
            idle = rss_mb(ship.pid, "VmRSS")
            parts += [rss_mb(ship.pid, f) for f in ("RssAnon", "RssFile")]
            urls = {
                "shipbot": f"http://127.0.0.1:{ship_port}/slack/events",
                "bare bolt": f"http://127.0.0.1:{bare_port}/slack/events",
            }
            for url in urls.values():
                await batch(url, WARMUP, 5)
            sent = WARMUP
            await drained(fake, sent)
            results: dict[str, list[float]] = {name: [] for name in urls}
            for _ in range(2):  # interleaved rounds, so drift hits both
                for name, url in urls.items():
                    results[name] += await batch(url, REQUESTS // 2, CONCURRENCY)
                    if name == "shipbot":
                        # each round starts with shipbot's replies to the last all posted,
                        # so neither side is measured while it still works on them
                        sent += REQUESTS // 2
                        await drained(fake, sent)
            peak = rss_mb(ship.pid, "VmHWM")
        finally:
            for proc in (ship, bare):
                proc.terminate()
                await proc.wait()
            await fake.stop()
            await discord_api.stop()
            await gateway.stop()
    ours, base = results["shipbot"], results["bare bolt"]
    print(f"{REQUESTS} signed /ship slash commands, {CONCURRENCY} concurrent, loopback")
    running = "Slack, Discord, webhooks, watchers and schedules" if whole else "Slack only"
    print(f"shipbot serve running: {running}")
    for name, values in results.items():
        print(f"{name:>10}: p50 {pct(values, 50):6.1f} ms   p99 {pct(values, 99):6.1f} ms")
    for q in (50, 99):
        ratio = pct(ours, q) / pct(base, q)
        print(f"{mark(ratio <= RATIO_GOAL)} ratio shipbot/bare p{q}: {ratio:.2f} (goal <= 1.2)")
    print(
        f"{mark(idle < IDLE_GOAL_MB)} shipbot RSS idle, settled {settle:.0f} s: {idle:.1f} MB "
        f"(goal < 80 MB; 1 s after start {first:.1f} MB; peak under load {peak:.1f} MB)"
    )
    anon, files = f"{parts[0]:.1f} -> {parts[2]:.1f}", f"{parts[1]:.1f} -> {parts[3]:.1f}"
    print(f"  of which heap and stacks (RssAnon) {anon} MB, mapped files (RssFile) {files} MB")
    print(f"replies posted by shipbot to the fake Web API: {len(fake.of('chat.postMessage'))}")


if __name__ == "__main__":
    asyncio.run(main())
