"""An image for a release: built from the app's source, and carried to where it runs."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from core.appspec import AppSpec
from core.bounded import clip
from core.config import BuildConfig
from core.deploy.spec import LABEL_RELEASE
from core.errors import BuildError, BuildTimedOut
from core.events import Event, LogLine, Progress
from core.store import Release
from core.swarm import SwarmClient

LOG_TAIL = 10
LINE_CHARS = 2000  # one build line, as relayed and kept


def build_paths(folder: Path, spec: AppSpec, shown: str) -> tuple[Path, str]:
    """The build context and the Dockerfile inside it; both must stay inside ``folder``
    (``shown`` names the folder in errors: its path, or the commit it was taken from)."""
    assert spec.build is not None
    context = (folder / spec.build.context).resolve()
    dockerfile = (context / spec.build.dockerfile).resolve()
    if not context.is_dir() or folder.resolve() not in (context, *context.parents):
        raise BuildError(f"build.context {spec.build.context!r} is not a folder inside {shown}")
    if context not in dockerfile.parents:
        raise BuildError(
            f"build.dockerfile {spec.build.dockerfile!r} is outside build.context "
            f"{spec.build.context!r}"
        )
    if not dockerfile.is_file():
        where = Path(shown) / dockerfile.relative_to(folder.resolve())
        raise BuildError(f"no Dockerfile at {where}: add one, or set build.dockerfile in app.yml")
    return context, str(dockerfile.relative_to(context))


async def build(
    swarm: SwarmClient,
    folder: Path,
    spec: AppSpec,
    release: Release,
    shown: str,
    limits: BuildConfig | None = None,
) -> AsyncIterator[Event]:
    """Build ``release.image`` from ``folder``, streaming the build log line by line, within
    shipbot.yml's ``build:`` limits (time, memory); only the last lines are kept, for the
    failure's reply, however long the log."""
    assert spec.build is not None
    limits = limits or BuildConfig()
    context, dockerfile = build_paths(folder, spec, shown)
    yield Progress(f"building {release.image}")
    lines: deque[str] = deque(maxlen=LOG_TAIL)  # the rest went by as events, not kept
    queue: asyncio.Queue[dict[str, Any] | BaseException | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    def pump() -> None:
        try:
            for message in swarm.build(
                str(context),
                dockerfile,
                release.image,
                dict(spec.build.args),
                {LABEL_RELEASE: str(release.number)},
                spec.build.target,
                memory=limits.memory,
                timeout=limits.timeout_seconds,
            ):
                loop.call_soon_threadsafe(queue.put_nowait, message)
            loop.call_soon_threadsafe(queue.put_nowait, None)
        except BaseException as exc:  # handed to the event loop, raised there
            loop.call_soon_threadsafe(queue.put_nowait, exc)

    pumping = asyncio.create_task(asyncio.to_thread(pump))
    error: str | None = None
    try:
        while (message := await queue.get()) is not None:
            if isinstance(message, BuildTimedOut):
                raise BuildTimedOut(
                    f"the build of {spec.name} took longer than {limits.timeout_seconds:g}s "
                    "(shipbot.yml build.timeout_seconds) and was stopped; nothing was deployed",
                    list(lines),
                ) from message
            if isinstance(message, BaseException):
                raise message
            if "error" in message:
                error = clip(str(message["error"]).strip(), LINE_CHARS)
                lines.append(error)
                yield LogLine(error)
            for line in str(message.get("stream", "")).splitlines():
                if line.strip():
                    lines.append(clip(line, LINE_CHARS))
                    yield LogLine(lines[-1])
    finally:
        await pumping
    if error or await asyncio.to_thread(swarm.image_id, release.image) is None:
        raise BuildError(
            f"the build of {spec.name} failed: {error or 'no image was produced'}"
            + memory_hint(error, limits),
            list(lines),
        )


def memory_hint(error: str | None, limits: BuildConfig) -> str:
    """A step killed (137) under a memory limit most likely ran out of it: say which."""
    if not error or limits.memory is None or "137" not in error:
        return ""
    return (
        f" (a build step was killed: it may have needed more than the {limits.memory // 2**20} MiB "
        "shipbot.yml build.memory allows)"
    )


async def carry(
    source: SwarmClient, target: SwarmClient, image: str, built_on: str, runs_on: str
) -> AsyncIterator[Event]:
    """``docker save`` on the build server streamed into ``docker load`` on the server that
    runs the image (its manager; ``spread`` takes it on to the other nodes)."""
    yield Progress(f"built on {built_on}: carrying {image} to {runs_on}")
    chunks = await asyncio.to_thread(source.save_image, image)
    await asyncio.to_thread(target.load_image, chunks)
    if await asyncio.to_thread(target.image_id, image) is None:
        raise BuildError(f"{image} was carried to {runs_on} but its engine does not have it")
    yield Progress(f"{image} is on {runs_on}")
