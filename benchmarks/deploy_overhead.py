"""Deploy overhead: shipbot's `deploy` of an already-built image vs a raw `docker service update`.

Both roll the same two-replica service (start-first, health-checked) to an image that is
already on the engine, alternating, median of N runs each, in one run. Prints the ratio.
Goal: shipbot / raw <= 1.15.

    .venv/bin/python benchmarks/deploy_overhead.py [--runs 5]
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._unique import unique  # noqa: E402
from commands.dispatch import ChatRequest, Dispatcher  # noqa: E402
from commands.pipelines import registry_login  # noqa: E402
from commands.replies import Result  # noqa: E402
from tests import local_registry  # noqa: E402
from tests.chat import remove_apps  # noqa: E402

APP = unique("bench-overhead")  # a second run on this engine has its own
SERVICE = f"{APP}-production"
IMAGE = unique("shipbot-bench/web")
APP_YML = """\
name: {app}
image: {image}
port: 8080
replicas: 2
healthcheck: {{cmd: ["wget", "-qO-", "http://127.0.0.1:8080/"], interval: 1s, timeout: 2s,
  retries: 3, start_period: 1s}}
"""


async def shipbot_deploy(bot: Dispatcher) -> float:
    started = time.perf_counter()
    replies = await bot.run(ChatRequest("console", "console:bench", "bench", f"deploy {APP}"))
    elapsed = time.perf_counter() - started
    outcome = [r for r in replies if isinstance(r, Result)]
    if not outcome or not outcome[0].ok:
        raise SystemExit(f"shipbot deploy failed: {replies}")
    return elapsed


def raw_update(tag: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [
            "docker",
            "service",
            "update",
            "--quiet",
            "--detach=false",
            "--no-resolve-image",
            "--image",
            tag,
            SERVICE,
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


async def main(runs: int) -> None:
    client = docker.from_env()
    client.images.build(path=str(ROOT / "examples" / "hello"), tag=f"{IMAGE}:1", rm=True)
    for tag in ("a", "b"):
        client.api.tag(f"{IMAGE}:1", IMAGE, tag)
    with (
        tempfile.TemporaryDirectory() as tmp,
        local_registry.running(Path(tmp) / "registry", "bench", "bench-password") as registry,
    ):
        # app.yml's image comes from a registry, with the app's login (as in production)
        local_registry.push(client, registry, f"{IMAGE}:1", "bench/web", "1")
        folder = Path(tmp) / APP
        folder.mkdir()
        image = f"{registry.host}/bench/web:1"
        (folder / "app.yml").write_text(APP_YML.format(app=APP, image=image))
        home = Path(tmp) / "home"
        home.mkdir()
        (home / "shipbot.yml").write_text("admins: [console:bench]\n")
        bot = Dispatcher.open(home)
        try:
            await bot.run(
                ChatRequest("console", "console:bench", "bench", f"apps add {APP} --path {folder}")
            )
            registry_login(
                bot,
                registry=registry.host,
                username=registry.user,
                password=registry.password,
                app=APP,
                by="bench",
            )
            await shipbot_deploy(bot)  # creates the service; not timed
            ours, raw = [], []
            for run in range(runs):
                raw.append(raw_update(f"{IMAGE}:{'ab'[run % 2]}"))
                ours.append(await shipbot_deploy(bot))
                print(f"run {run + 1}: raw {raw[-1]:.2f}s  shipbot {ours[-1]:.2f}s", flush=True)
        finally:
            bot.close()
            remove_apps(client, [APP])
            local_registry.forget(client, registry)
            for tag in ("1", "a", "b"):
                with contextlib.suppress(docker.errors.APIError):
                    client.api.remove_image(f"{IMAGE}:{tag}")
    ratio = statistics.median(ours) / statistics.median(raw)
    print(f"raw docker service update --detach=false: median {statistics.median(raw):.2f}s")
    print(f"shipbot deploy (chat path, same image):   median {statistics.median(ours):.2f}s")
    print(f"ratio shipbot/raw: {ratio:.3f} (goal <= 1.15)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    asyncio.run(main(parser.parse_args().runs))
