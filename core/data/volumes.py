"""Apps' named volumes, backed up as tar streams through the databases' backup pipeline.

An app's named volume (app.yml ``volumes: [data:/data]``) is the engine's volume
``APP-ENV-data``, as the app's service mounts it. A backup runs ``tar -cf -`` in a helper
service (``backups.volume_image``, busybox by default) that mounts the volume read-only at
``/volume`` on the node of the app's task, and its stdout goes through the same gzip, age,
multipart upload, honest verdict and retention as a database dump (``core.data.backup``).
A restore untars into a new volume, mounted read-write by such a helper, never into one
that exists. The helper service is removed afterwards, whatever happened.

A volume's backups are recorded under ``APP/ENV/VOLUME`` (no database name has a '/'), and
that is also its name in ``backups.schedules``. Everything here blocks: callers use threads.
"""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from core.config import BackupsConfig
from core.data import dumps, restore
from core.data.backup import BackupError, Located, Report, run_backup
from core.data.s3 import S3Store
from core.names import (
    APP_NAME_RE,
    ENV_NAME_RE,
    LABEL_APP,
    LABEL_ENV,
    LABEL_HELPER,
    LABEL_MANAGED,
    LABEL_PLANE,
    service_name,
)
from core.ownership import foreign, stamped
from core.process import owned
from core.store import Store
from core.swarm import SwarmClient, running_tasks

MOUNT = "/volume"
HELPER_SECONDS = 60.0  # for the helper's container to run (the image is local)
HELPER_SLEEP = "3600"  # the helper idles this long at most, should shipbot die meanwhile
ONCE = {"Parallelism": 1, "Order": "stop-first", "FailureAction": "pause"}  # never updated
SOURCE_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")  # app.yml's volume source names


@dataclass(frozen=True)
class VolumeRef:
    """One named volume of an app in one environment, as app.yml names it."""

    app: str
    env: str
    volume: str

    @property
    def key(self) -> str:
        return f"{self.app}/{self.env}/{self.volume}"

    @property
    def engine_name(self) -> str:
        """The engine's volume, as a deploy mounts it (``core.deploy.spec``)."""
        return f"{service_name(self.app, self.env)}-{self.volume}"


def check_volume(name: str) -> str:
    if not SOURCE_RE.match(name):
        raise ValueError(
            f"{name!r} is not a volume name as app.yml's `volumes:` has it (letters, digits, "
            "'_', '.', '-')"
        )
    return name


def parse_key(name: str) -> VolumeRef | None:
    """``APP/ENV/VOLUME`` as a volume; None for anything else (a database's name)."""
    parts = name.split("/")
    if len(parts) != 3:
        return None
    app, env, volume = parts
    if APP_NAME_RE.match(app) and ENV_NAME_RE.match(env) and SOURCE_RE.match(volume):
        return VolumeRef(app, env, volume)
    return None


def helper_spec(
    name: str, image: str, volume: str, *, read_only: bool, node: str | None
) -> dict[str, Any]:
    """A one-replica service that only mounts ``volume`` at ``MOUNT`` and idles, for tar to
    run in; on ``node`` (where a local volume lives) when known; never restarted."""
    spec: dict[str, Any] = {
        "Name": name,
        "Labels": {LABEL_HELPER: volume, LABEL_MANAGED: "true"},
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": image,
                "Command": ["sleep", HELPER_SLEEP],
                "Labels": {LABEL_HELPER: volume},
                "Mounts": [
                    {"Type": "volume", "Source": volume, "Target": MOUNT, "ReadOnly": read_only}
                ],
            },
            "RestartPolicy": {"Condition": "none", "MaxAttempts": 0},
        },
        "Mode": {"Replicated": {"Replicas": 1}},
        "UpdateConfig": ONCE,
        "RollbackConfig": ONCE,
        "EndpointSpec": {"Mode": "dnsrr"},  # no ports, no virtual IP
    }
    if node:
        spec["TaskTemplate"]["Placement"] = {"Constraints": [f"node.id=={node}"]}
    return spec


def source(swarm: SwarmClient, ref: VolumeRef, plane_id: str) -> str | None:
    """Check the app's service (of control plane ``plane_id``) mounts the volume and the
    engine has it; the node of the app's running task (None when scaled to zero)."""
    service = service_name(ref.app, ref.env)
    found = swarm.inspect_service(service)
    volume = swarm.inspect_volume(ref.engine_name)
    for what, seen in ((f"service {service}", found), (f"volume {ref.engine_name}", volume)):
        other = foreign(seen, plane_id)
        if other is not None:
            raise BackupError(
                f"the {what} on this swarm is another control plane's ({LABEL_PLANE}={other}): "
                "nothing was read"
            )
    labels = found["Spec"].get("Labels") or {} if found else {}
    if found is None or (labels.get(LABEL_APP), labels.get(LABEL_ENV)) != (ref.app, ref.env):
        # a name like APP-ENV is also that of app APP-X in ENV-Y: the labels tell them apart
        raise BackupError(f"{ref.app} has no service in {ref.env} ({service}): deploy it first")
    mounts = found["Spec"]["TaskTemplate"]["ContainerSpec"].get("Mounts") or []
    if not any(m.get("Type") == "volume" and m.get("Source") == ref.engine_name for m in mounts):
        raise BackupError(
            f"{ref.app} ({ref.env}) mounts no named volume {ref.volume!r}: app.yml's `volumes:` "
            f"would list `{ref.volume}:/some/path`"
        )
    if volume is None:
        raise BackupError(f"the volume {ref.engine_name} does not exist on the server")
    tasks = running_tasks(swarm.tasks(service))
    return tasks[0].get("NodeID") if tasks else None


@contextlib.contextmanager
def helper(
    swarm: SwarmClient,
    image: str,
    ref: VolumeRef,
    *,
    read_only: bool,
    node: str | None,
    plane_id: str,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[Located]:
    """A helper mounting ``ref``'s engine volume, as a ``Located`` for the pipeline; the
    helper (and a volume it makes, on a restore) carries control plane ``plane_id``'s id."""
    name = f"shipbot-volume-{uuid.uuid4().hex[:10]}"
    spec = helper_spec(name, image, ref.engine_name, read_only=read_only, node=node)
    swarm.create_service(owned(stamped(spec, plane_id)))
    try:
        deadline = clock() + HELPER_SECONDS
        while True:
            container = _running(swarm, name)
            if container is not None:
                break
            if clock() > deadline:
                raise BackupError(
                    f"the helper for volume {ref.engine_name} ({image}) did not start within "
                    f"{HELPER_SECONDS:.0f} s: {_why(swarm, name)}"
                )
            time.sleep(0.2)
        yield Located(ref.key, "volume", container, dumps.target_from_env("volume", {}, MOUNT))
    finally:
        with contextlib.suppress(Exception):
            swarm.remove_service(name)


def _running(swarm: SwarmClient, service: str) -> str | None:
    tasks = running_tasks(swarm.tasks(service))
    container = tasks[0]["Status"].get("ContainerStatus", {}).get("ContainerID") if tasks else None
    info = swarm.inspect_container(container) if container else None
    return info["Id"] if info and info.get("State", {}).get("Status") == "running" else None


def _why(swarm: SwarmClient, service: str) -> str:
    for task in swarm.tasks(service):
        status = task.get("Status", {})
        if status.get("Err") or status.get("Message"):
            return str(status.get("Err") or status.get("Message"))
    return "no task ran"


def backup_volume(
    swarm: SwarmClient,
    store: Store,
    s3: S3Store,
    config: BackupsConfig,
    ref: VolumeRef,
    by: str,
) -> Report:
    plane_id = store.plane_id()
    node = source(swarm, ref, plane_id)
    helping = helper(swarm, config.volume_image, ref, read_only=True, node=node, plane_id=plane_id)
    with helping as located:
        return run_backup(swarm, store, s3, config, located, by)


def restore_volume(
    swarm: SwarmClient,
    s3: S3Store,
    config: BackupsConfig,
    row: Mapping[str, Any],
    into: VolumeRef,
    identity: str | None,
    plane_id: str,
) -> restore.Restored:
    """Backup ``row`` of a volume into the new volume ``into`` (refused if it exists), on
    the node of the app's task when it runs; the new volume carries ``plane_id``.
    Everything is checked before the volume is made."""
    if swarm.inspect_volume(into.engine_name) is not None:
        raise BackupError(
            f"the volume {into.engine_name} exists already: restore into a new one (--to)"
        )
    restore.precheck(swarm, s3, row, identity, config.age_identity_env)
    service = service_name(into.app, into.env)
    tasks = running_tasks(swarm.tasks(service)) if swarm.inspect_service(service) else []
    node = tasks[0].get("NodeID") if tasks else None
    helping = helper(
        swarm, config.volume_image, into, read_only=False, node=node, plane_id=plane_id
    )
    with helping as located:
        return restore.restore(
            swarm, s3, row, located, identity, identity_env=config.age_identity_env
        )
