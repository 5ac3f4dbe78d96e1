"""Restoring an RDB into a Redis that runs with ``appendonly yes``.

Such a server loads its append-only files at start, never ``dump.rdb``, and Redis 7 makes
an empty AOF when none is there: a restore that only replaced ``dump.rdb`` would come back
with the old keys or none. So, before the RDB is written, AOF is switched off at run time
(no more writes to its files); after, the RDB becomes the AOF's only base file
(``APPENDFILENAME.1.base.rdb``, which Redis 7 reads as an RDB) under a manifest naming it
alone; the restart then loads exactly the backup's keys and the server carries on
appending from there. Redis before 7 (one ``appendonly.aof``, no manifest) is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.data import dumps
from core.data.backup import BackupError, Located
from core.swarm import SwarmClient

# the base file and manifest, written by sh with the names as arguments (never in the script)
INSTALL = (
    'set -e; d="$1/$2"; mkdir -p "$d"; rm -f "$d"/*; '
    'cp "$4" "$d/$3.1.base.rdb"; '
    'printf "file %s seq 1 type b\\n" "$3.1.base.rdb" > "$d/$3.manifest"'
)


@dataclass(frozen=True)
class AofLayout:
    dir: str
    dirname: str
    filename: str


def config_get(target: dumps.Target, name: str) -> dumps.Exec:
    return dumps.redis_cli(target, "CONFIG", "GET", name)


def stop_aof(target: dumps.Target) -> dumps.Exec:
    return dumps.redis_cli(target, "CONFIG", "SET", "appendonly", "no")


def install(target: dumps.Target, layout: AofLayout) -> dumps.Exec:
    argv = ("sh", "-c", INSTALL, "sh", layout.dir, layout.dirname, layout.filename)
    return dumps.Exec((*argv, dumps.REDIS_DUMP), dumps.redis_cli(target).env)


def parse_config(text: str) -> dict[str, str]:
    """``CONFIG GET``'s reply: name and value on alternate lines."""
    lines = text.splitlines()
    return {lines[i]: lines[i + 1] for i in range(0, len(lines) - 1, 2)}


def _run(swarm: SwarmClient, into: Located, command: dumps.Exec) -> str:
    done = swarm.exec_stream(into.container, command.argv, command.env, command.user)
    try:
        text = b"".join(done.stdout()).decode(errors="replace")
    finally:
        done.close()
    if done.exit_code() != 0:
        raise BackupError(f"{command.argv[0]} failed: {done.stderr() or text.strip()}")
    return text


def prepare(swarm: SwarmClient, into: Located) -> AofLayout | None:
    """None when ``into`` runs without AOF; else its layout, with AOF stopped until the
    restart (which turns it on again, as the server's configuration says)."""
    info = dumps.parse_info(_run(swarm, into, dumps.redis_persistence(into.target)))
    if info.get("aof_enabled") != "1":
        return None
    found: dict[str, str] = {}
    for name in ("dir", "appenddirname", "appendfilename"):
        found.update(parse_config(_run(swarm, into, config_get(into.target, name))))
    if not found.get("appenddirname"):
        raise BackupError(
            f"{into.name} runs Redis with appendonly on but without an AOF manifest (Redis "
            "before 7): restoring an RDB there would be overwritten by its AOF; restore into "
            "a new database with --to, or turn appendonly off first"
        )
    reply = _run(swarm, into, stop_aof(into.target))
    if "OK" not in reply:
        raise BackupError(f"{into.name} would not turn appendonly off for the restore: {reply}")
    return AofLayout(found.get("dir") or "/data", found["appenddirname"], found["appendfilename"])


def make_base(swarm: SwarmClient, into: Located, layout: AofLayout) -> None:
    """The restored ``dump.rdb`` as the AOF's only base file."""
    _run(swarm, into, install(into.target, layout))
