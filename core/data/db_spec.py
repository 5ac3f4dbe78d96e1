"""Pure builders for managed databases: names, credentials, the Swarm service, the URLs.

Nothing here talks to Docker or the store. Each kind keeps its official image's contract
(environment variables, data folder, port), so the image is configuration.
"""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from core.config import DB_KINDS, DataConfig
from core.durations import parse_duration_ns
from core.names import DB_NAME_RE, LABEL_DB, LABEL_MANAGED, NETWORK

LABEL_DB_KIND = "shipbot.db.kind"
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
DEFAULT_VERSIONS = {"postgres": "16", "mariadb": "11", "mysql": "8.4", "redis": "7"}
PORTS = {"postgres": 5432, "mariadb": 3306, "mysql": 3306, "redis": 6379}
DATA_PATHS = {
    "postgres": "/var/lib/postgresql/data",
    "mariadb": "/var/lib/mysql",
    "mysql": "/var/lib/mysql",
    "redis": "/data",
}
SCHEMES = {"postgres": "postgres", "mariadb": "mysql", "mysql": "mysql", "redis": "redis"}
# letters and digits only: safe in URLs, shells and SQL literals alike
PASSWORD_ALPHABET = string.ascii_letters + string.digits
PASSWORD_LENGTH = 32
STOP_GRACE_NS = parse_duration_ns("30s")  # a database flushes before it exits
HEALTH = {
    "Interval": parse_duration_ns("2s"),
    "Timeout": parse_duration_ns("5s"),
    "Retries": 5,
    "StartPeriod": parse_duration_ns("60s"),  # first start: initdb and friends
}


@dataclass(frozen=True)
class Credentials:
    """Who the apps log in as; ``root_password`` only for MariaDB/MySQL (dumps use it)."""

    user: str
    password: str
    database: str
    root_password: str | None = None


@dataclass(frozen=True)
class Database:
    """One managed database as shipbot recorded it (credentials decrypted)."""

    name: str
    kind: str
    version: str
    image: str
    credentials: Credentials
    created_by: str
    created_at: float
    server: str = "local"  # the server it lives on (``db create --server``)

    @property
    def service(self) -> str:
        return service_name(self.name)

    @property
    def volume(self) -> str:
        return volume_name(self.name)

    @property
    def port(self) -> int:
        return PORTS[self.kind]

    @property
    def variable(self) -> str:
        return url_variable(self.kind)

    @property
    def url(self) -> str:
        return url(self)


def check_name(name: str) -> str:
    if not DB_NAME_RE.match(name):
        raise ValueError(
            f"{name!r} is not a database name (a-z, 0-9 and '-', starting with a letter, "
            "at most 31 characters)"
        )
    return name


def check_kind(kind: str) -> str:
    if kind not in DB_KINDS:
        raise ValueError(f"{kind!r} is not a database kind: use one of {', '.join(DB_KINDS)}")
    return kind


def check_version(version: str) -> str:
    if not VERSION_RE.match(version):
        raise ValueError(f"{version!r} is not an image version such as 16 or 10.11")
    return version


def service_name(name: str) -> str:
    return f"db-{name}"


def volume_name(name: str) -> str:
    return f"db-{name}-data"


def network_name(name: str) -> str:
    """The database's own network: it alone is on it, so its name resolves inside it."""
    return f"{NETWORK}-db-{name}"


def url_variable(kind: str) -> str:
    return "REDIS_URL" if kind == "redis" else "DATABASE_URL"


def image_for(config: DataConfig, kind: str, version: str) -> str:
    return config.images[kind].replace("{version}", version)


def password(length: int = PASSWORD_LENGTH) -> str:
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))


def new_credentials(kind: str, name: str) -> Credentials:
    """Fresh credentials; the user and database are the name with '_' for '-'."""
    ident = name.replace("-", "_")
    if kind == "redis":
        return Credentials("default", password(), "0")
    root = password() if kind in ("mariadb", "mysql") else None
    return Credentials(ident, password(), ident, root)


def url(db: Database) -> str:
    """What an attached app gets: reachable by service name on the app's own network."""
    creds = db.credentials
    where = f"{db.service}:{db.port}"
    if db.kind == "redis":
        # Redis 6's ACL user "default" is the --requirepass one; naming it keeps the URL's
        # password where every client (and shipbot's masking) expects user:password@
        return f"redis://{creds.user}:{creds.password}@{where}/{creds.database}"
    return f"{SCHEMES[db.kind]}://{creds.user}:{creds.password}@{where}/{creds.database}"


def environment(kind: str, creds: Credentials) -> dict[str, str]:
    """The official image's variables for a first start (and redis-cli's password)."""
    if kind == "postgres":
        return {
            "POSTGRES_USER": creds.user,
            "POSTGRES_PASSWORD": creds.password,
            "POSTGRES_DB": creds.database,
        }
    if kind in ("mariadb", "mysql"):
        prefix = kind.upper()
        assert creds.root_password is not None
        return {
            f"{prefix}_USER": creds.user,
            f"{prefix}_PASSWORD": creds.password,
            f"{prefix}_DATABASE": creds.database,
            f"{prefix}_ROOT_PASSWORD": creds.root_password,
        }
    return {"REDISCLI_AUTH": creds.password}


def health_test(kind: str, creds: Credentials) -> list[str]:
    if kind == "postgres":
        return ["CMD", "pg_isready", "-h", "127.0.0.1", "-U", creds.user, "-d", creds.database]
    if kind == "mariadb":
        return ["CMD", "mariadb-admin", "ping", "-h", "127.0.0.1", "--silent"]
    if kind == "mysql":
        return ["CMD", "mysqladmin", "ping", "-h", "127.0.0.1", "--silent"]
    # redis-cli reads REDISCLI_AUTH; a NOAUTH or LOADING reply is not PONG
    return ["CMD-SHELL", "redis-cli ping | grep -qx PONG"]


def labels(db: Database) -> dict[str, str]:
    return {LABEL_DB: db.name, LABEL_DB_KIND: db.kind, LABEL_MANAGED: "true"}


def service_spec(db: Database, networks: Iterable[str] = ()) -> dict[str, Any]:
    """One replica on the named volume, stop-first (two servers must never share a data
    folder), by DNS round robin (no IPVS assumed). On ``networks`` only: its own at first,
    then those of the app environments it serves (core/data/db_networks.py)."""
    container: dict[str, Any] = {
        "Image": db.image,
        "Labels": labels(db),
        "Env": [f"{k}={v}" for k, v in sorted(environment(db.kind, db.credentials).items())],
        "Healthcheck": {"Test": health_test(db.kind, db.credentials), **HEALTH},
        "Mounts": [
            {
                "Type": "volume",
                "Source": db.volume,
                "Target": DATA_PATHS[db.kind],
                "ReadOnly": False,
                "VolumeOptions": {"Labels": {LABEL_DB: db.name, LABEL_MANAGED: "true"}},
            }
        ],
        "StopGracePeriod": STOP_GRACE_NS,
    }
    if db.kind == "redis":
        container["Args"] = ["redis-server", "--requirepass", db.credentials.password]
    update = {
        "Parallelism": 1,
        "Delay": 0,
        "FailureAction": "pause",
        "Monitor": HEALTH["Interval"] * HEALTH["Retries"],
        "MaxFailureRatio": 0,
        "Order": "stop-first",
    }
    return {
        "Name": db.service,
        "Labels": labels(db),
        "TaskTemplate": {
            "ContainerSpec": container,
            "RestartPolicy": {
                "Condition": "any",
                "Delay": parse_duration_ns("2s"),
                "MaxAttempts": 0,
            },
            "Networks": [{"Target": network} for network in networks],
            "ForceUpdate": 0,
        },
        "Mode": {"Replicated": {"Replicas": 1}},
        "UpdateConfig": update,
        "RollbackConfig": update,
        "EndpointSpec": {"Mode": "dnsrr"},
    }
