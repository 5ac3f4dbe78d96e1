"""Restore a recorded backup into a database, streamed from S3, then count what arrived.

S3 → sha256 checked against the record → age decryption (when the object is ``.age``)
→ gunzip → the kind's restore tool's stdin in the target's container. Redis takes the
RDB file, then restarts without saving so the new server loads it (with appendonly on, as
its AOF's base: ``core.data.redis_aof``). The check afterwards
counts rows per table (keys per Redis db), for the reply and for comparison.

``precheck`` runs every check a restore needs before anything is made for it: the backup is
a kept good one, the age identity is there for an encrypted one, S3 lets us read its object
(at the endpoint and bucket its row names) and holds it whole, and a node has room for it.
Each error names the variable or key to set.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.data import dumps, redis_aof, stream
from core.data.backup import BackupError, Located, locate
from core.data.s3 import S3Store
from core.errors import CoreError
from core.store.backups import BACKUP_OK, BACKUP_SUSPECT
from core.swarm import SwarmClient

RESTART_POLLS = 240  # × 0.25 s: how long a restarted Redis may take to load its RDB
ROOM_FACTOR = 3  # a restored database takes up to this many times its dump's raw size
DEFAULT_IDENTITY_ENV = "SHIPBOT_AGE_IDENTITY"


@dataclass
class Restored:
    database: str
    backup_id: int
    size: int = 0
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)


def check_counts(swarm: SwarmClient, located: Located) -> dict[str, int]:
    """Rows per table (keys per Redis db) in ``located``."""
    target = located.target

    def run(command: dumps.Exec) -> str:
        done = swarm.exec_stream(located.container, command.argv, command.env, command.user)
        text = b"".join(done.stdout()).decode(errors="replace")
        if done.exit_code() != 0:
            raise BackupError(f"the check failed: {done.stderr() or text.strip()}")
        return text

    if target.kind in ("mariadb", "mysql"):
        listed = run(dumps.counts(target))
        tables = [line.split("\t")[0] for line in listed.splitlines() if line.strip()]
        return dumps.parse_counts(target.kind, run(dumps.counts(target, tables)))
    return dumps.parse_counts(target.kind, run(dumps.counts(target)))


def kept(row: Mapping[str, Any]) -> None:
    """Only a kept good backup restores; a suspect one once an admin accepted it."""
    if row["deleted_at"] is not None:
        raise BackupError(f"backup {row['id']} of {row['database']} is deleted by retention")
    if row["status"] == BACKUP_SUSPECT:
        raise BackupError(
            f"backup {row['id']} of {row['database']} is suspect (smaller than the last good "
            f"one): an admin accepts it first with `backup accept {row['database']} {row['id']}`"
        )
    if row["status"] != BACKUP_OK:
        raise BackupError(f"backup {row['id']} is not a kept good backup ({row['status']})")


def encrypted_without_identity(row: Mapping[str, Any], identity: str | None, env: str) -> None:
    if row["key"].endswith(".age") and not identity:
        raise BackupError(
            f"backup {row['id']} is encrypted (age): set {env} to its age identity (the "
            "secret key; shipbot.yml backups.age_identity_env names another variable)"
        )


def precheck(
    swarm: SwarmClient,
    s3: S3Store,
    row: Mapping[str, Any],
    identity: str | None,
    identity_env: str = DEFAULT_IDENTITY_ENV,
    usage_image: str | None = None,
) -> list[str]:
    """Every check before anything is created; raises ``BackupError`` naming what to set,
    else returns notes (what could not be checked)."""
    kept(row)
    encrypted_without_identity(row, identity, identity_env)
    place = s3.at(row)
    try:
        stored = place.head(row["key"])
    except CoreError as exc:
        raise BackupError(f"backup {row['id']} cannot be read from S3: {exc}") from exc
    if row["size"] is not None and stored.size != row["size"]:
        raise BackupError(
            f"s3://{place.config.bucket}/{row['key']} holds {stored.size} bytes, backup "
            f"{row['id']} was {row['size']}: it changed since the backup"
        )
    if not usage_image:
        return ["disk space not checked: alerts.usage_image is null"]
    return room(swarm, row, usage_image)


def room(swarm: SwarmClient, row: Mapping[str, Any], usage_image: str) -> list[str]:
    """Refuse when no node's engine data root has room for the restored database."""
    need_kb = (row["raw_size"] or row["size"] or 0) * ROOM_FACTOR / 1024
    try:
        usage = swarm.node_usage(usage_image)
    except CoreError as exc:
        return [f"disk space not checked: {exc}"]
    free = [
        u["disk_total_kb"] * (100 - u["disk_percent"]) / 100
        for u in usage.values()
        if "disk_total_kb" in u and "disk_percent" in u
    ]
    if not free:
        return ["disk space not checked: no node reported its disk"]
    if max(free) < need_kb:
        raise BackupError(
            f"no room: backup {row['id']} needs about {need_kb / 1024:.1f} MB "
            f"({ROOM_FACTOR}× its dump) and no node has that much free in the engine's data "
            f"root (the most: {max(free) / 1024:.1f} MB): free some space first"
        )
    return []


def restore(
    swarm: SwarmClient,
    s3: S3Store,
    row: Mapping[str, Any],
    into: Located,
    identity: str | None = None,
    over: bool = False,
    identity_env: str = DEFAULT_IDENTITY_ENV,
) -> Restored:
    """Stream backup ``row`` (a record of ``core.store.backups``) into ``into``; ``over``:
    ``into`` holds data already, which the backup's objects replace. Its object is read
    where the row says it went (``S3Store.at``)."""
    kept(row)
    if row["kind"] != into.kind:
        raise BackupError(f"backup {row['id']} is {row['kind']}, {into.name} is {into.kind}")
    encrypted_without_identity(row, identity, identity_env)
    started = time.monotonic()
    digest = stream.Digest(s3.at(row).download(row["key"]), row["sha256"])
    chunks: Iterator[bytes] = iter(digest)
    if identity and row["key"].endswith(".age"):
        chunks = stream.decrypt_chunks(chunks, identity)
    aof = redis_aof.prepare(swarm, into) if into.kind == "redis" else None
    command = dumps.restore(into.target, over=over)
    run = swarm.exec_stream(
        into.container, command.argv, command.env, command.user, stdin=stream.gunzip_chunks(chunks)
    )
    try:
        output = bytearray()
        for chunk in run.stdout():
            output = (output + chunk)[-2048:]
    finally:
        run.close()
    if run.exit_code() != 0:
        said = run.stderr() or output.decode(errors="replace").strip() or "(no output)"
        raise BackupError(f"{command.argv[0]} exited {run.exit_code()}: {said}")
    if aof is not None:
        redis_aof.make_base(swarm, into, aof)
    if into.kind == "redis":
        into = _reload_redis(swarm, into)
    return Restored(
        into.name, row["id"], digest.size, time.monotonic() - started, check_counts(swarm, into)
    )


def _reload_redis(swarm: SwarmClient, into: Located) -> Located:
    """Stop Redis without saving; Swarm starts a new container, which loads the RDB."""
    command = dumps.redis_reload(into.target)
    stop = swarm.exec_stream(into.container, command.argv, command.env)
    stream.drain(stop.stdout())
    for _ in range(RESTART_POLLS):
        time.sleep(0.25)
        try:
            again = locate(swarm, into.name)
        except BackupError:
            continue
        if again.container == into.container:
            continue
        probe = dumps.redis_cli(again.target, "PING")
        ping = swarm.exec_stream(again.container, probe.argv, probe.env)
        if b"PONG" in b"".join(ping.stdout()):
            return again
    raise BackupError(f"{into.name} did not come back after loading the restored RDB")
