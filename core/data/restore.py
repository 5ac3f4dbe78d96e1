"""Restore a recorded backup into a database, streamed from S3, then count what arrived.

S3 → sha256 checked against the record → age decryption (when the object is ``.age``)
→ gunzip → the kind's restore tool's stdin in the target's container. Redis takes the
RDB file, then restarts without saving so the new server loads it (with appendonly on, as
its AOF's base: ``core.data.redis_aof``). The check afterwards
counts rows per table (keys per Redis db), for the reply and for comparison.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.data import dumps, redis_aof, stream
from core.data.backup import BackupError, Located, locate
from core.data.s3 import S3Store
from core.store.backups import BACKUP_OK
from core.swarm import SwarmClient

RESTART_POLLS = 240  # × 0.25 s: how long a restarted Redis may take to load its RDB


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


def restore(
    swarm: SwarmClient,
    s3: S3Store,
    row: Mapping[str, Any],
    into: Located,
    identity: str | None = None,
    over: bool = False,
) -> Restored:
    """Stream backup ``row`` (a record of ``core.store.backups``) into ``into``; ``over``:
    ``into`` holds data already, which the backup's objects replace."""
    if row["status"] != BACKUP_OK or row["deleted_at"] is not None:
        raise BackupError(f"backup {row['id']} is not a kept good backup ({row['status']})")
    if row["kind"] != into.kind:
        raise BackupError(f"backup {row['id']} is {row['kind']}, {into.name} is {into.kind}")
    started = time.monotonic()
    digest = stream.Digest(s3.download(row["key"]), row["sha256"])
    chunks: Iterator[bytes] = iter(digest)
    if row["key"].endswith(".age"):
        if not identity:
            raise BackupError("the backup is encrypted: set the age identity's variable")
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
