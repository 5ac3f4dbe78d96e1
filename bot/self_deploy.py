"""shipbot running as a Swarm service: its heartbeat and health check, and the post a new
bot makes when it comes up on another version (after ``shipbot self deploy``)."""

from __future__ import annotations

import json
import os
import time
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

# the standard library only at import: `shipbot health` (the image's HEALTHCHECK) loads
# nothing else
if TYPE_CHECKING:
    from commands.dispatch import Dispatcher

HEARTBEAT = "serve.heartbeat"
ANNOUNCED = "announced-version"
SELF_APP = "shipbot"  # the name the root app.yml gives shipbot
# A housekeeping round beats every few seconds; a long certificate check or backup round
# may hold one up, so unhealthy means several rounds missed.
SERVE_INTERVAL = 5.0  # ``serve``'s seconds between housekeeping rounds (a heartbeat each)
MAX_AGE_SECONDS = 90.0


def home_folder() -> Path:
    """``$SHIPBOT_HOME`` as the store finds it, without creating anything (a health check
    running as another user must not leave files behind)."""
    return Path(os.environ.get("SHIPBOT_HOME") or Path.home() / ".local/share/shipbot")


def running_version() -> str:
    """The package version, and the revision the image was built from when it says one."""
    revision = os.environ.get("SHIPBOT_REVISION", "")
    base = version("shipbot")
    return f"{base} ({revision[:12]})" if revision and revision != "unknown" else base


def beat(home: Path) -> None:
    """Written by ``shipbot serve`` every housekeeping round; read by ``shipbot health``."""
    path = home / HEARTBEAT
    fresh = path.with_suffix(".tmp")
    fresh.write_text(json.dumps({"pid": os.getpid(), "version": running_version()}))
    fresh.replace(path)


def health(home: Path, max_age: float = MAX_AGE_SECONDS) -> tuple[bool, str]:
    """Healthy while serve's heartbeat is younger than ``max_age``; reads, never writes."""
    path = home / HEARTBEAT
    try:
        age = time.time() - path.stat().st_mtime
        facts = json.loads(path.read_text())
    except (OSError, ValueError):
        return False, f"no heartbeat at {path}: is `shipbot serve` running?"
    if age > max_age:
        return False, f"the last heartbeat is {age:.0f}s old (limit {max_age:.0f}s)"
    return True, f"shipbot {facts.get('version', '?')} serving (heartbeat {age:.0f}s ago)"


def announce(dispatcher: Dispatcher) -> str | None:
    """Once per version: post to the channels that take deploys of shipbot that this
    bot came up, and on which version (None when it already said so)."""
    from commands.replies import Message

    home: Path = dispatcher.engine.plane.home
    path = home / ANNOUNCED
    now = running_version()
    before = path.read_text().strip() if path.exists() else None
    if before == now:
        return None
    text = f"🤖 shipbot {now} is up" + (f" (it was {before})" if before else "")
    dispatcher.notifier.publish("deploys", SELF_APP, None, Message(text))
    path.write_text(now + "\n")
    return text


def self_deploy_text(ref: str | None, image: str | None, app: str = SELF_APP) -> str:
    """The chat command ``shipbot self deploy`` sends: a deploy of the app shipbot, which
    the root app.yml describes (register it once: ``apps add shipbot --git URL``)."""
    parts = ["deploy", app, *([ref] if ref else []), *(["--image", image] if image else [])]
    return " ".join(parts)
