"""Deploy time against replicas: 6 replicas should take little longer than 1.

The same app (examples/hello: busybox httpd with a health check) registered three times:
1 replica, 6 replicas with the default rollout (half the replicas at a time, start-first),
and 6 replicas with ``rollout: {parallelism: 1}``. Each is deployed through the chat path,
in turn, median of N runs each, in one run; every deploy builds a new release (cached
layers), so each is a real rolling update. Prints the ratios. Goal: 6 / 1 <= 1.5.

    .venv/bin/python benchmarks/deploy_scaling.py [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._unique import unique  # noqa: E402
from commands.dispatch import ChatRequest, Dispatcher  # noqa: E402
from commands.replies import Result  # noqa: E402
from tests.chat import remove_apps  # noqa: E402

USER = "console:bench"
# app name (this run's own) -> what its app.yml sets instead of the example's two replicas
APPS = {
    unique("bench-scale-one"): "replicas: 1",
    unique("bench-scale-six"): "replicas: 6",
    unique("bench-scale-serial"): "replicas: 6\nrollout: {parallelism: 1}",
}


def app_folder(tmp: Path, name: str, settings: str) -> Path:
    folder = tmp / name
    shutil.copytree(ROOT / "examples" / "hello", folder)
    yml = folder / "app.yml"
    text = yml.read_text().replace("name: hello", f"name: {name}")
    yml.write_text(text.replace("replicas: 2", settings))
    return folder


async def say(bot: Dispatcher, text: str) -> list:
    return await bot.run(ChatRequest("console", USER, "bench", text))


async def timed_deploy(bot: Dispatcher, name: str) -> float:
    started = time.perf_counter()
    replies = await say(bot, f"deploy {name}")
    elapsed = time.perf_counter() - started
    outcome = [r for r in replies if isinstance(r, Result)]
    if not outcome or not outcome[0].ok:
        raise SystemExit(f"deploy of {name} failed: {replies}")
    return elapsed


async def main(runs: int) -> None:
    client = docker.from_env()
    times: dict[str, list[float]] = {name: [] for name in APPS}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        (home / "shipbot.yml").write_text(f"admins: [{USER}]\n")
        bot = Dispatcher.open(home)
        try:
            for name, settings in APPS.items():
                folder = app_folder(Path(tmp), name, settings)
                await say(bot, f"apps add {name} --path {folder}")
                await timed_deploy(bot, name)  # creates the service; not timed
            for run in range(runs):
                for name in APPS:
                    times[name].append(await timed_deploy(bot, name))
                line = "  ".join(f"{name} {times[name][-1]:.2f}s" for name in APPS)
                print(f"run {run + 1}: {line}", flush=True)
        finally:
            bot.close()
            remove_apps(client, list(APPS))
            client.close()
    one, six, serial = (statistics.median(times[name]) for name in APPS)
    print(f"medians: 1 replica {one:.2f}s, 6 replicas {six:.2f}s, 6 one at a time {serial:.2f}s")
    print(f"deploy time 6 replicas / 1 replica = {six / one:.2f} (goal ≤ 1.5)")
    serial_ratio = f"{serial / one:.2f}"
    print(f"deploy time 6 replicas / 1 replica with rollout: {{parallelism: 1}} = {serial_ratio}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    asyncio.run(main(parser.parse_args().runs))
