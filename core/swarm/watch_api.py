"""What the watch asks of a real engine: its event stream and what each node uses.

Disk and memory are measured through the engine itself, on every node at once: a global
service that is never restarted (one task per node, then done) runs ``df`` on the engine's
data root (mounted read-only: that is the disk images, containers and volumes fill) and
reads ``/proc/meminfo`` (a container sees the host's). Its output comes back through the
service's logs, keyed by task and so by node; the service is removed afterwards, and with
it its tasks and their containers. Not a ``global-job``: removing a job service leaves its
tasks in the swarm and their exited containers on the nodes (moby#42789, #44312), one per
node every round. Nothing is installed on the nodes and no port is opened; the probe's
image must be on every node.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from typing import Any

import docker
import docker.errors
import requests

from core.errors import DeployError, EngineUnavailable
from core.names import LABEL_MANAGED

EVENT_FILTERS = {"type": ["container", "node"], "event": ["die", "oom", "update"]}
PROBE_PREFIX = "shipbot-probe-"
PROBE_TIMEOUT = 60.0
PROBE_SCRIPT = (
    "busybox df -P -k /data | busybox tail -n 1; "
    "busybox grep -E '^(MemTotal|MemAvailable):' /proc/meminfo"
)


def since_arg(since_ns: int) -> str:
    """The engine's ``since`` as seconds.nanoseconds, exactly (a float would round)."""
    return f"{since_ns // 1_000_000_000}.{since_ns % 1_000_000_000:09d}"


class DockerEvents:
    """The engine's event stream from ``since`` on; ``close`` drops its connection."""

    def __init__(self, api: docker.APIClient, since_ns: int | None) -> None:
        since = since_arg(since_ns) if since_ns else None
        self._stream = api.events(since=since, filters=EVENT_FILTERS, decode=True)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        try:
            yield from self._stream
        except (requests.exceptions.RequestException, OSError, ValueError) as exc:
            raise EngineUnavailable(f"the engine's event stream broke: {exc}") from exc
        except docker.errors.DockerException as exc:
            raise EngineUnavailable(f"the engine's event stream broke: {exc}") from exc

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._stream.close()
        # over SSH docker-py cannot cancel a stream ("not supported for the SSH protocol"),
        # and the thread reading it would wait for the next event: end its SSH session's
        # input instead. dial-stdio passes the EOF on, the engine ends the stream at once,
        # and sshd closes the session when dial-stdio has exited (core/servers/ssh_sessions.py
        # counts it until then; a channel closed first would be uncounted while it lingers)
        with contextlib.suppress(Exception):
            channel = getattr(self._stream._response.raw._fp.fp, "channel", None)  # noqa: SLF001
            if channel is not None:
                channel.shutdown_write()


def parse_usage(lines: list[str]) -> dict[str, float]:
    """The probe's output → disk and memory use in percent (and the sizes behind them).

    ``lines``: df's line (``fs 1024-blocks used available capacity% mount``) and
    meminfo's ``MemTotal:``/``MemAvailable:`` lines, in kB.
    """
    out: dict[str, float] = {}
    memory: dict[str, float] = {}
    for line in lines:
        parts = line.split()
        if len(parts) >= 6 and parts[-2].endswith("%") and parts[1].isdigit():
            total, used, free = (float(p) for p in parts[1:4])
            out["disk_total_kb"] = total
            # df's own rounding: used / (used + available), as its Capacity column shows
            out["disk_percent"] = round(100.0 * used / (used + free), 1) if used + free else 0.0
        elif len(parts) >= 2 and parts[0] in ("MemTotal:", "MemAvailable:"):
            memory[parts[0].rstrip(":")] = float(parts[1])
    if memory.get("MemTotal"):
        total = memory["MemTotal"]
        out["memory_total_kb"] = total
        available = memory.get("MemAvailable", total)
        out["memory_percent"] = round(100.0 * (total - available) / total, 1)
    return out


def node_usage(
    api: docker.APIClient, image: str, timeout: float = PROBE_TIMEOUT
) -> dict[str, dict[str, float]]:
    """Node id → its disk and memory use, from one run of the probe on every node."""
    root = api.info().get("DockerRootDir") or "/var/lib/docker"
    name = f"{PROBE_PREFIX}{uuid.uuid4().hex[:10]}"
    task_template = {
        "ContainerSpec": {
            "Image": image,
            "Command": ["busybox", "sh", "-c", PROBE_SCRIPT],
            "Mounts": [{"Type": "bind", "Source": root, "Target": "/data", "ReadOnly": True}],
        },
        "RestartPolicy": {"Condition": "none"},
        "Resources": {"Limits": {"MemoryBytes": 16 * 1024 * 1024}},
    }
    try:
        api.create_service(
            task_template=task_template,
            name=name,
            labels={LABEL_MANAGED: "true", "shipbot.probe": "usage"},
            mode={"Global": {}},  # with RestartPolicy none: runs once per node
        )
    except docker.errors.APIError as exc:
        raise DeployError(f"measuring the nodes: the engine said: {exc.explanation}") from exc
    try:
        deadline = time.monotonic() + timeout
        while True:
            tasks = api.tasks(filters={"service": name})
            if tasks and all(t["Status"]["State"] in _ENDED for t in tasks):
                break
            if time.monotonic() > deadline:
                raise DeployError(f"measuring the nodes: {name} did not finish in {timeout:g}s")
            time.sleep(0.2)
        nodes = {t["ID"]: t.get("NodeID", "") for t in tasks}
        raw = api.service_logs(name, stdout=True, stderr=True, details=True, follow=False)
        text = b"".join(raw).decode("utf-8", errors="replace")
    finally:
        with contextlib.suppress(docker.errors.APIError):
            api.remove_service(name)
    refused = [t for t in tasks if t["Status"]["State"] in ("rejected", "failed")]
    if refused and len(refused) == len(tasks):
        why = refused[0]["Status"].get("Err") or refused[0]["Status"].get("Message", "")
        raise DeployError(
            f"measuring the nodes: the probe ({image}) did not run: {why}; set "
            "alerts.usage_image to an image with busybox that every node has, or null"
        )
    lines: dict[str, list[str]] = {}
    for line in text.splitlines():
        details, _, message = line.partition(" ")
        attrs = dict(item.partition("=")[::2] for item in details.split(","))
        node = nodes.get(attrs.get("com.docker.swarm.task.id", ""))
        if node:
            lines.setdefault(node, []).append(message)
    return {node: usage for node, found in lines.items() if (usage := parse_usage(found))}


_ENDED = {"complete", "failed", "rejected", "shutdown", "orphaned"}
