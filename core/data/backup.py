"""Backups of managed databases: streamed from the container to S3, judged honestly.

A backup runs the kind's dump tool (``core.data.dumps``) in the database's container
through the engine's exec stream, and its stdout goes through gzip and, when recipients
are configured, age encryption (``core.data.stream``) into a multipart upload
(``core.data.s3``): never whole in memory or on disk. It is ``ok`` only when the tool
exited 0, its output ended as a finished dump does, S3 holds exactly the bytes sent (size,
and the ETag of the parts sent), and the size is above ``min_bytes`` and not below
``min_ratio`` of the last good one. One that breaks the shrink rule alone is ``suspect``: kept,
for an admin to accept (a large table dropped on purpose) or retention to remove. Anything
else is ``failed``, with the tool's stderr. Retention runs only after a verified upload, and
deletes good backups beyond ``keep_last`` and the failed and suspect objects older than the
newest good one. Everything here blocks: callers use threads.
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from core.config import BackupsConfig
from core.data import dumps, stream
from core.data.s3 import S3Store, Sent, Stored
from core.errors import CoreError
from core.names import LABEL_PLANE
from core.ownership import foreign
from core.store import Store
from core.store.backups import BACKUP_FAILED, BACKUP_OK, BACKUP_SUSPECT
from core.swarm import SwarmClient, running_tasks

# the managed databases' service and labels (core.data.db_spec)
DB_SERVICE = "db-{name}"
LABEL_DB_KIND = "shipbot.db.kind"
BGSAVE_POLLS = 600  # × 0.1 s
READ_AHEAD = 16  # chunks of the dump read ahead of the compressor (each ≤ a few hundred KB)
EXTENSIONS = {"postgres": "pgdump", "mariadb": "sql", "mysql": "sql", "redis": "rdb"}


class BackupError(CoreError):
    """A backup or restore could not run (no such database, database down)."""


@dataclass(frozen=True)
class Located:
    """A database's running container and how to reach its data."""

    name: str
    kind: str
    container: str
    target: dumps.Target


@dataclass
class Report:
    """What one backup did, for the record and the channel."""

    id: int
    database: str
    kind: str
    bucket: str
    key: str
    ok: bool = False
    suspect: bool = False  # too small next to the last good one, kept for an admin
    size: int = 0
    raw_size: int = 0
    sha256: str = ""
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)  # keys retention removed
    notes: list[str] = field(default_factory=list)

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def locate(swarm: SwarmClient, name: str, plane_id: str | None = None) -> Located:
    """The running container of database ``name`` and its credentials (from its env); with
    ``plane_id``, only a database of that control plane."""
    service = DB_SERVICE.format(name=name)
    found = swarm.inspect_service(service)
    if found is None:
        raise BackupError(f"there is no database {name} (no service {service})")
    other = foreign(found, plane_id) if plane_id else None
    if other is not None:
        raise BackupError(
            f"{service} on this swarm is another control plane's ({LABEL_PLANE}={other}), "
            f"not this one's database {name}: nothing was read"
        )
    kind = found["Spec"].get("Labels", {}).get(LABEL_DB_KIND, "")
    if kind not in EXTENSIONS:
        raise BackupError(f"{service} is not a managed database (label {LABEL_DB_KIND})")
    tasks = running_tasks(swarm.tasks(service))
    container = tasks[0]["Status"].get("ContainerStatus", {}).get("ContainerID") if tasks else None
    info = swarm.inspect_container(container) if container else None
    if not info or not info.get("State", {}).get("Running"):
        raise BackupError(f"database {name} is down: {service} has no running container")
    env = dict(item.partition("=")[::2] for item in info["Config"].get("Env") or [])
    return Located(name, kind, info["Id"], dumps.target_from_env(kind, env))


def object_key(s3: S3Store, located: Located, started: float, encrypted: bool) -> str:
    stamp = dt.datetime.fromtimestamp(started, dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    if located.kind == "volume":  # named APP/ENV/VOLUME
        ext = "tar.gz" + (".age" if encrypted else "")
        return s3.key("volumes", located.name, f"{stamp}.{ext}")
    ext = f"{EXTENSIONS[located.kind]}.gz" + (".age" if encrypted else "")
    return s3.key(located.name, f"{stamp}.{ext}")


def exited(code: int) -> str:
    """How a tool ended, naming the signal when a shell-style code says it was killed."""
    if 128 < code < 160:
        return f"exited {code} (killed by signal {code - 128})"
    return f"exited {code}"


def verdict(
    kind: str,
    code: int | None,
    stderr: str,
    complete: bool,
    sent: Sent,
    stored: Stored,
    last_good: int | None,
    config: BackupsConfig,
) -> list[str]:
    """Why a finished upload is not a good backup; empty when it is."""
    problems = []
    if code is None:
        problems.append("the stream ended before the dump tool did (truncated)")
    elif code != 0:
        problems.append(f"the dump tool {exited(code)}: {stderr or '(no stderr)'}")
    elif not complete:
        problems.append("the dump is incomplete: its stream ended without the tool's end marker")
    if stored.size != sent.size:
        problems.append(f"S3 holds {stored.size} bytes but {sent.size} were sent")
    if stored.etag != sent.etag:
        problems.append(f"S3's checksum (ETag {stored.etag}) is not that of the parts sent")
    if sent.size < config.min_bytes:
        problems.append(f"only {sent.size} bytes: below the floor of {config.min_bytes}")
    shrunk = shrink(sent.size, last_good, config)
    if shrunk:
        problems.append(shrunk)
    return problems


def shrink(size: int, last_good: int | None, config: BackupsConfig) -> str | None:
    """The shrink rule: why ``size`` is suspect next to the last good backup, or None."""
    if last_good and size < last_good * config.min_ratio:
        return (
            f"{size} bytes is less than {config.min_ratio:.0%} of the last good "
            f"backup ({last_good} bytes)"
        )
    return None


def _wait_bgsave(swarm: SwarmClient, located: Located) -> None:
    """BGSAVE, then poll until the save it started has finished, and check it went well."""

    def info() -> dict[str, str]:
        command = dumps.redis_persistence(located.target)
        run = swarm.exec_stream(located.container, command.argv, command.env)
        text = b"".join(run.stdout()).decode(errors="replace")
        if run.exit_code() != 0:
            raise BackupError(f"redis-cli INFO failed: {run.stderr() or text.strip()}")
        return dumps.parse_info(text)

    before = int(info().get("rdb_last_save_time", "0"))
    command = dumps.redis_bgsave(located.target)
    run = swarm.exec_stream(located.container, command.argv, command.env)
    reply = b"".join(run.stdout()).decode(errors="replace").strip()
    if run.exit_code() != 0 or "started" not in reply.lower():
        raise BackupError(f"redis BGSAVE failed: {run.stderr() or reply}")
    for _ in range(BGSAVE_POLLS):
        now = info()
        if now.get("rdb_bgsave_in_progress") == "0":
            if now.get("rdb_last_bgsave_status") != "ok":
                raise BackupError("redis BGSAVE failed: see the server's log")
            if int(now.get("rdb_last_save_time", "0")) >= before:
                return
        time.sleep(0.1)
    raise BackupError(f"redis BGSAVE did not finish within {BGSAVE_POLLS // 10} s")


def read_ahead(chunks: Iterable[bytes], depth: int = READ_AHEAD) -> Iterator[bytes]:
    """``chunks`` read by a thread of their own, at most ``depth`` ahead, so the engine's
    stream keeps flowing while this thread compresses and hashes (zlib and hashlib let go
    of the GIL on large buffers). An error on the reading side is raised here."""
    ahead: queue.Queue[tuple[bytes | None, BaseException | None]] = queue.Queue(depth)
    stop = threading.Event()

    def put(item: tuple[bytes | None, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                ahead.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def reader() -> None:
        try:
            for chunk in chunks:
                if not put((chunk, None)):
                    return
            put((None, None))
        except BaseException as exc:  # handed to the consumer, which raises it
            put((None, exc))

    thread = threading.Thread(target=reader, name="dump reader", daemon=True)
    thread.start()
    try:
        while True:
            chunk, error = ahead.get()
            if error is not None:
                raise error
            if chunk is None:
                return
            yield chunk
    finally:
        # no join: a reader blocked on the socket ends when the caller closes the exec
        stop.set()


def run_backup(
    swarm: SwarmClient,
    store: Store,
    s3: S3Store,
    config: BackupsConfig,
    located: Located,
    by: str,
    clock: Callable[[], float] = time.time,
) -> Report:
    started = clock()
    key = object_key(s3, located, started, bool(config.age_recipients))
    place = s3.config
    backup_id = store.start_backup(
        located.name, located.kind, key, by, started, place.endpoint, place.bucket
    )
    report = Report(backup_id, located.name, located.kind, s3.config.bucket, key)
    good = store.good_backups(located.name)
    last_good = good[0]["size"] if good else None
    facts: dict[str, Any] = {}
    try:
        if located.kind == "redis":
            _wait_bgsave(swarm, located)
        command = dumps.dump(located.target)
        run = swarm.exec_stream(located.container, command.argv, command.env, command.user)
        tap = stream.Tap(read_ahead(run.stdout()))
        chunks: Iterator[bytes] = stream.gzip_chunks(tap)
        if config.age_recipients:
            chunks = stream.encrypt_chunks(chunks, config.age_recipients)

        def finish() -> None:
            code = run.exit_code()
            if code != 0:
                what = "ended before the tool did" if code is None else exited(code)
                raise BackupError(
                    f"{command.argv[0]} {what}: {run.stderr() or '(no stderr)'}; nothing was stored"
                )

        try:
            sent = s3.upload(key, chunks, finish)
        finally:
            run.close()
        facts = {"size": sent.size, "raw_size": tap.size, "sha256": sent.sha256}
        facts["etag"] = sent.etag
        stored = s3.head(key)
        complete = tap.ended and dumps.complete(located.kind, tap.head, tap.tail)
        report.problems = verdict(
            located.kind, run.exit_code(), run.stderr(), complete, sent, stored, last_good, config
        )
    except CoreError as exc:
        report.problems = [str(exc)]
    report.ok = not report.problems
    report.suspect = report.problems == [shrink(facts.get("size", 0), last_good, config)]
    report.size, report.raw_size = facts.get("size", 0), facts.get("raw_size", 0)
    report.sha256 = facts.get("sha256", "")
    finished = clock()
    report.seconds = finished - started
    status = BACKUP_OK if report.ok else BACKUP_SUSPECT if report.suspect else BACKUP_FAILED
    store.finish_backup(
        backup_id,
        status,
        finished,
        error="; ".join(report.problems) or None,
        **facts,
    )
    if report.ok:
        report.deleted, report.notes = apply_retention(
            store, s3, located.name, config.retention.keep_last, clock
        )
    return report


def apply_retention(
    store: Store, s3: S3Store, database: str, keep_last: int, clock: Callable[[], float]
) -> tuple[list[str], list[str]]:
    """Delete the good backups beyond the newest ``keep_last``, and the failed and suspect
    ones older than the newest good one (a run that sent nothing has no object); (deleted
    keys, problems)."""
    deleted, notes = [], []
    for row in store.good_backups(database)[keep_last:] + store.discarded_backups(database):
        try:
            if row["key"]:
                s3.at(row).delete(row["key"])
        except CoreError as exc:
            notes.append(f"retention could not delete {row['key']}: {exc}")
            continue
        store.mark_backups_deleted([row["id"]], clock())
        if row["key"]:
            deleted.append(row["key"])
    return deleted, notes
