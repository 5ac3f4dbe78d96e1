"""Pure builders for backups: which command dumps, restores and counts each kind of database.

Each builder returns an ``Exec`` (argv, environment, user) that the backup executor runs
inside the database's container through the engine's exec stream; nothing here runs
anything. Passwords travel in the exec's environment (``PGPASSWORD``, ``MYSQL_PWD``,
``REDISCLI_AUTH``), never in argv, where ``ps`` in the container would show them.
Who the database user is comes from the official images' environment contract
(``POSTGRES_USER``, ``MARIADB_USER``/``MYSQL_USER``, …), read by ``target_from_env``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

KINDS = ("postgres", "mariadb", "mysql", "redis", "volume")
REDIS_DUMP = "/data/dump.rdb"
# what each kind's dump ends with, when the tool finished writing it (checked on the stream)
MYSQL_TRAILER = b"-- Dump completed"
PG_MAGIC = b"PGDMP"
REDIS_MAGIC = b"REDIS"
TAR_END = b"\0" * 1024


class DumpError(ValueError):
    """A database cannot be backed up as described (unknown kind, missing user)."""


@dataclass(frozen=True)
class Target:
    """One database inside one container."""

    kind: str
    user: str = ""
    database: str = ""
    password: str | None = field(default=None, repr=False)
    path: str = ""  # volume: the folder where the volume is mounted in the container


@dataclass(frozen=True)
class Exec:
    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict, repr=False)
    user: str | None = None


def target_from_env(kind: str, env: dict[str, str], path: str = "") -> Target:
    """The database an official image's container was started for, from its environment."""
    if kind == "postgres":
        user = env.get("POSTGRES_USER") or "postgres"
        return Target(kind, user, env.get("POSTGRES_DB") or user, env.get("POSTGRES_PASSWORD"))
    if kind in ("mariadb", "mysql"):
        database = env.get("MARIADB_DATABASE") or env.get("MYSQL_DATABASE") or ""
        user = env.get("MARIADB_USER") or env.get("MYSQL_USER") or ""
        password = env.get("MARIADB_PASSWORD") or env.get("MYSQL_PASSWORD")
        if not user:
            user = "root"
            password = env.get("MARIADB_ROOT_PASSWORD") or env.get("MYSQL_ROOT_PASSWORD")
        if not database:
            raise DumpError(f"the {kind} container names no database (MARIADB_DATABASE)")
        return Target(kind, user, database, password)
    if kind == "redis":
        return Target(kind, password=env.get("REDISCLI_AUTH") or env.get("REDIS_PASSWORD"))
    if kind == "volume":
        if not path.startswith("/"):
            raise DumpError(f"a volume backup needs its mount path, got {path!r}")
        return Target(kind, path=path)
    raise DumpError(f"{kind!r} is not one of {', '.join(KINDS)}")


def _pg_env(target: Target) -> dict[str, str]:
    return {"PGPASSWORD": target.password} if target.password else {}


def _my_env(target: Target) -> dict[str, str]:
    return {"MYSQL_PWD": target.password} if target.password else {}


def _redis_env(target: Target) -> dict[str, str]:
    return {"REDISCLI_AUTH": target.password} if target.password else {}


def _my_tool(target: Target, mariadb: str, mysql: str) -> str:
    # official mariadb images from 11.0 on ship only the mariadb-* names
    return mariadb if target.kind == "mariadb" else mysql


def dump(target: Target) -> Exec:
    """The command whose stdout is the whole backup (for Redis: after ``redis_bgsave``)."""
    if target.kind == "postgres":
        argv = ("pg_dump", "-Fc", "--no-password", "-U", target.user, "-d", target.database)
        return Exec(argv, _pg_env(target))
    if target.kind in ("mariadb", "mysql"):
        tool = _my_tool(target, "mariadb-dump", "mysqldump")
        argv = (tool, "--single-transaction", "--quick", "--no-tablespaces")
        return Exec((*argv, "-u", target.user, target.database), _my_env(target))
    if target.kind == "redis":
        return Exec(("cat", REDIS_DUMP))
    if target.kind == "volume":
        return Exec(("tar", "-C", target.path, "-cf", "-", "."))
    raise DumpError(f"{target.kind!r} is not one of {', '.join(KINDS)}")


def restore(target: Target, over: bool = False) -> Exec:
    """The command that reads a backup on stdin into ``target`` (for Redis: the RDB file,
    loaded by ``redis_reload``). ``over``: into a database that holds data already, whose
    objects the dump's replace (MariaDB/MySQL dumps drop each table before creating it)."""
    if target.kind == "postgres":
        argv = ("pg_restore", "--no-owner", "--no-privileges", "--exit-on-error")
        if over:
            argv = (*argv, "--clean", "--if-exists")
        return Exec((*argv, "-U", target.user, "-d", target.database), _pg_env(target))
    if target.kind in ("mariadb", "mysql"):
        tool = _my_tool(target, "mariadb", "mysql")
        return Exec((tool, "-u", target.user, target.database), _my_env(target))
    if target.kind == "redis":
        return Exec(("dd", f"of={REDIS_DUMP}", "bs=1M", "status=none"))
    if target.kind == "volume":
        return Exec(("tar", "-C", target.path, "-xf", "-"))
    raise DumpError(f"{target.kind!r} is not one of {', '.join(KINDS)}")


def redis_cli(target: Target, *args: str) -> Exec:
    return Exec(("redis-cli", *args), _redis_env(target))


def redis_bgsave(target: Target) -> Exec:
    return redis_cli(target, "BGSAVE")


def redis_persistence(target: Target) -> Exec:
    """``INFO persistence``: whether a BGSAVE runs, how the last one ended and when."""
    return redis_cli(target, "INFO", "persistence")


def redis_reload(target: Target) -> Exec:
    """Stop without saving, so the restart loads the restored RDB (the orchestrator
    restarts the container)."""
    return redis_cli(target, "SHUTDOWN", "NOSAVE")


def parse_info(text: str) -> dict[str, str]:
    """``key:value`` lines of a Redis INFO reply."""
    pairs = (line.strip().partition(":") for line in text.splitlines())
    return {key: value for key, sep, value in pairs if sep and not key.startswith("#")}


PG_COUNTS = (
    "SELECT table_schema || '.' || table_name, (xpath('/row/c/text()', query_to_xml("
    "format('SELECT count(*) AS c FROM %I.%I', table_schema, table_name), false, true, '')"
    "))[1]::text FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND "
    "table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1"
)


def counts(target: Target, tables: list[str] | None = None) -> Exec:
    """What the check after a restore reads: ``name|count`` lines per table (MariaDB/MySQL:
    first the table names with ``tables=None``, then their counts), Redis: INFO keyspace."""
    if target.kind == "postgres":
        argv = ("psql", "--no-password", "-U", target.user, "-d", target.database, "-At")
        return Exec((*argv, "-F", "|", "-c", PG_COUNTS), _pg_env(target))
    if target.kind in ("mariadb", "mysql"):
        tool = _my_tool(target, "mariadb", "mysql")
        if tables is None:
            sql = "SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'"
        elif tables:
            # the names come from SHOW TABLES and are quoted as identifiers and literals
            sql = " UNION ALL ".join(_count_one(name) for name in sorted(tables))
        else:
            sql = "SELECT 1 FROM DUAL WHERE FALSE"
        argv = (tool, "-u", target.user, "-N", "-B", "-e", sql, target.database)
        return Exec(argv, _my_env(target))
    if target.kind == "redis":
        return redis_cli(target, "INFO", "keyspace")
    if target.kind == "volume":  # one line per file
        return Exec(("find", target.path, "-type", "f"))
    raise DumpError(f"no row count check for {target.kind!r}")


def _count_one(table: str) -> str:
    literal, ident = _quoted(table, "'"), _quoted(table, "`")
    return f"SELECT '{literal}', COUNT(*) FROM `{ident}`"  # noqa: S608


def _quoted(name: str, quote: str) -> str:
    if quote == "'":
        return name.replace("\\", "\\\\").replace("'", "''")
    return name.replace(quote, quote * 2)


def parse_counts(kind: str, text: str) -> dict[str, int]:
    """The check's output as {table or redis db: rows or keys}."""
    if kind == "volume":
        return {"files": sum(1 for line in text.splitlines() if line.strip())}
    out: dict[str, int] = {}
    for line in text.splitlines():
        if kind == "redis":
            name, sep, rest = line.strip().partition(":")
            if sep and name.startswith("db"):
                fields = dict(item.partition("=")[::2] for item in rest.split(","))
                out[name] = int(fields.get("keys", "0"))
            continue
        sep = "|" if kind == "postgres" else "\t"
        name, found, value = line.rpartition(sep)
        if found and value.strip().isdigit():
            out[name] = int(value)
    return out


def complete(kind: str, head: bytes, tail: bytes) -> bool:
    """Whether a dump's first and last bytes look like the tool finished writing it."""
    if kind == "postgres":
        return head.startswith(PG_MAGIC)
    if kind in ("mariadb", "mysql"):
        return MYSQL_TRAILER in tail[-200:]
    if kind == "redis":
        # RDB: the EOF opcode 0xFF, then an 8-byte CRC64
        return head.startswith(REDIS_MAGIC) and len(tail) >= 9 and tail[-9] == 0xFF
    if kind == "volume":
        return tail.endswith(TAR_END)
    return False
