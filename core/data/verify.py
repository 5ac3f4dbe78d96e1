"""Proof that a backup restores: the latest good backup of a database, restored into a
throwaway database of the same kind and image, then checked.

``verify(swarm, store, s3, db, ...)`` (blocking; call it in a thread) creates the service
``db-verify-NAME-ID`` on its own volume with fresh credentials, waits for its task to run,
streams the backup in with ``core.data.restore.restore`` (sha256 checked, the restore tool's
exit code), reads the row counts per table (keys per Redis db) and, when a ``query`` is
configured, runs it and wants exit 0 and some output. The throwaway service and volume are
removed whatever happened. The result is recorded in ``backup_verifies`` and returned.
A verify passes only when the restore and the check succeed and the restored database is
not empty.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.data import db_spec, dumps, restore
from core.data.backup import BackupError, Located
from core.data.db_spec import Database
from core.data.s3 import S3Store
from core.errors import CoreError
from core.ownership import stamped
from core.process import owned
from core.store import Store
from core.swarm import SwarmClient, running_tasks

READY_SECONDS = 180.0
POLL_SECONDS = 0.5
RELEASE_POLLS = 120  # × POLL_SECONDS: the removed task lets go of its volume


@dataclass
class Verified:
    database: str
    backup_id: int | None
    ok: bool
    detail: str
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    id: int = 0


def scratch_of(db: Database, backup_id: int) -> Database:
    """The throwaway twin of ``db``: same kind and image, fresh name and credentials."""
    name = f"verify-{db.name}-{backup_id}"
    return dataclasses.replace(db, name=name, credentials=db_spec.new_credentials(db.kind, name))


def query_exec(target: dumps.Target, query: str) -> dumps.Exec:
    """The configured check query in the kind's client (Redis: a command line)."""
    if target.kind == "postgres":
        argv = ("psql", "--no-password", "-U", target.user, "-d", target.database, "-At")
        return dumps.Exec((*argv, "-v", "ON_ERROR_STOP=1", "-c", query), dumps._pg_env(target))
    if target.kind in ("mariadb", "mysql"):
        tool = "mariadb" if target.kind == "mariadb" else "mysql"
        argv = (tool, "-u", target.user, "-N", "-B", "-e", query, target.database)
        return dumps.Exec(argv, dumps._my_env(target))
    return dumps.redis_cli(target, *shlex.split(query))


def wait_running(
    swarm: SwarmClient,
    service: str,
    deadline: float,
    clock: Callable[[], float],
    pause: Callable[[float], None],
) -> str:
    """The container of ``service``'s running task, once there is one."""
    while True:
        for task in running_tasks(swarm.tasks(service)):
            container = (task["Status"].get("ContainerStatus") or {}).get("ContainerID")
            if container:
                return str(container)
        if clock() >= deadline:
            raise BackupError(f"the throwaway database {service} did not start in time")
        pause(POLL_SECONDS)


def run_check(swarm: SwarmClient, located: Located, query: str | None) -> tuple[str, bool]:
    """The configured query's output, and whether it passed (exit 0, some output)."""
    if not query:
        return "", True
    command = query_exec(located.target, query)
    done = swarm.exec_stream(located.container, command.argv, command.env, command.user)
    text = b"".join(done.stdout()).decode(errors="replace").strip()
    if done.exit_code() != 0:
        return f"the check query failed: {done.stderr() or text or '(no output)'}", False
    if not text:
        return "the check query returned nothing", False
    return f"check query: {text[:200]}", True


def remove_scratch(swarm: SwarmClient, scratch: Database, pause: Callable[[float], None]) -> None:
    swarm.remove_service(scratch.service)
    for _ in range(RELEASE_POLLS):
        try:
            swarm.remove_volume(scratch.volume)
            return
        except CoreError:  # still in use by the stopping container
            pause(POLL_SECONDS)


def verify(
    swarm: SwarmClient,
    store: Store,
    s3: S3Store,
    db: Database,
    *,
    by: str,
    query: str | None = None,
    identity: str | None = None,
    identity_env: str = restore.DEFAULT_IDENTITY_ENV,
    clock: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.monotonic,
    pause: Callable[[float], None] = time.sleep,
) -> Verified:
    """Restore ``db``'s latest good backup into a throwaway database and check it."""
    started = clock()
    good = store.good_backups(db.name)
    if not good:
        result = Verified(db.name, None, False, f"{db.name} has no good backup to verify")
    else:
        plane_id = store.plane_id()
        result = _restore_and_check(
            swarm, s3, db, good[0], query, (identity, identity_env), monotonic, pause, plane_id
        )
    result.seconds = clock() - started
    result.id = store.record_verify(
        database=db.name,
        backup_id=result.backup_id,
        ok=result.ok,
        detail=result.detail,
        counts=result.counts,
        by=by,
        started_at=started,
        finished_at=clock(),
    )
    return result


def _restore_and_check(
    swarm: SwarmClient,
    s3: S3Store,
    db: Database,
    row: dict[str, Any],
    query: str | None,
    identity: tuple[str | None, str],
    monotonic: Callable[[], float],
    pause: Callable[[float], None],
    plane_id: str,
) -> Verified:
    try:  # before the throwaway is made: the identity, and S3 holding the object whole
        restore.precheck(swarm, s3, row, *identity)
    except CoreError as exc:
        return Verified(db.name, row["id"], False, f"backup {row['id']} cannot restore: {exc}")
    scratch = scratch_of(db, row["id"])
    env = db_spec.environment(scratch.kind, scratch.credentials)
    try:
        swarm.create_service(owned(stamped(db_spec.service_spec(scratch), plane_id)))
        container = wait_running(
            swarm, scratch.service, monotonic() + READY_SECONDS, monotonic, pause
        )
        located = Located(
            scratch.name, scratch.kind, container, dumps.target_from_env(scratch.kind, env)
        )
        done = restore.restore(swarm, s3, row, located, identity[0], identity_env=identity[1])
        said, passed = run_check(swarm, located, query)
    except (CoreError, ValueError) as exc:
        return Verified(db.name, row["id"], False, f"backup {row['id']} did not restore: {exc}")
    finally:
        # the throwaway's name says what it is; the next verify uses a new one
        with contextlib.suppress(CoreError):
            remove_scratch(swarm, scratch, pause)
    tables = sum(1 for _ in done.counts)
    if not passed:
        return Verified(db.name, row["id"], False, said, done.counts)
    if not tables:
        detail = f"backup {row['id']} restored, but the restored database is empty"
        return Verified(db.name, row["id"], False, detail, done.counts)
    detail = f"backup {row['id']} restored: {tables} tables, {sum(done.counts.values())} rows"
    if db.kind == "redis":
        detail = f"backup {row['id']} restored: {sum(done.counts.values())} keys"
    return Verified(db.name, row["id"], True, "; ".join(filter(None, [detail, said])), done.counts)
