"""The control plane's own settings: ``$SHIPBOT_HOME/shipbot.yml``.

```yaml
admins: [console:alice, slack:U024BE7LH]   # bootstrap admins, by immutable platform id
secret_key: null                           # Fernet key; default: secret.key beside the store
notify:                                    # where deploy results, alerts, backups, certs go
  - {platform: slack, channel: C0123456, apps: ["*"], envs: [production], kinds: [deploys, alerts]}
host_paths: []                             # host folders app.yml may bind-mount (none by default)
server_apps: {eu-1: [api, "web-*"]}         # apps each SSH server may run (none by default)
local: true                                # false: no engine here, only servers added over SSH
dns: {zone: example.com, addresses: [203.0.113.10]}  # Cloudflare records: core/edge/dns.py
edge: {image: traefik:v3, http_port: 80}   # the Traefik proxy: EdgeConfig below has every key
data: {images: {postgres: "postgres:{version}"}}  # database images: DataConfig below
pipelines: {max_previews: 5}               # webhooks and previews: PipelinesConfig below
build: {timeout_seconds: 1800, memory: 2G} # limits on image builds: BuildConfig below
```
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.appspec import Approval, MemoryBytes
from core.bounded import MAX_ERRORS, check_size, clip, load_yaml
from core.config_watch import AlertsConfig, DigestConfig, DriftConfig
from core.cron import crontab_field
from core.errors import CoreError
from core.names import APP_NAME_RE, USER_RE, hostname

CONFIG_FILE = "shipbot.yml"
M = TypeVar("M", bound=BaseModel)


class ConfigError(CoreError):
    """shipbot.yml is unreadable or invalid."""


NOTIFY_KINDS = ("deploys", "alerts", "backups", "certs", "digest")


class NotifyRoute(BaseModel):
    """Where messages of some kinds about some apps and environments go."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    platform: str = Field(pattern=r"^(slack|discord|console)$")
    channel: str = Field(pattern=r"^[A-Za-z0-9_-]{1,80}$")
    apps: list[str] = Field(default_factory=lambda: ["*"])
    envs: list[str] = Field(default_factory=lambda: ["*"])
    kinds: list[str] = Field(default_factory=lambda: list(NOTIFY_KINDS))

    @field_validator("kinds")
    @classmethod
    def _kinds(cls, value: list[str]) -> list[str]:
        for kind in value:
            if kind not in NOTIFY_KINDS:
                raise ValueError(f"{kind!r} is not one of {', '.join(NOTIFY_KINDS)}")
        return value


# edge: (the proxy and its certificates; core/edge/ builds from these)
LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
AUTO_TTL = 1  # Cloudflare's "automatic"


class AcmeConfig(BaseModel):
    """``edge.acme``: how Traefik obtains certificates (keys documented in core/edge/acme.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$")
    ca_server: str = Field(default=LETS_ENCRYPT, pattern=r"^https://\S+$")
    ca_certificates: str | None = Field(default=None, min_length=1)
    volume: str = Field(default="shipbot-edge-acme", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    certificates_duration: int = Field(default=2160, ge=1)
    dns_token_secret: str | None = Field(default=None, min_length=1)
    dns_resolvers: list[str] = Field(default_factory=list)
    watch_seconds: float = Field(default=60.0, gt=0)
    alert_days: int = Field(default=14, ge=1)


class DnsConfig(BaseModel):
    """``dns:``: Cloudflare records for app domains (keys documented in core/edge/dns.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: Literal["cloudflare"] = "cloudflare"
    zone: str
    addresses: list[str] = Field(default_factory=list)
    target: str | None = None
    proxied: bool = False
    ttl: int = AUTO_TTL
    token_env: str = Field(default="CLOUDFLARE_API_TOKEN", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    api_url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    timeout_seconds: float = Field(default=15.0, gt=0, le=120)

    @field_validator("zone", "target")
    @classmethod
    def _hostname(cls, value: str | None) -> str | None:
        return None if value is None else hostname(value)

    @field_validator("addresses")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        out = []
        for item in value:
            try:
                out.append(str(ipaddress.ip_address(item)))
            except ValueError as exc:
                raise ValueError(f"{item!r} is not an IPv4 or IPv6 address") from exc
        if len(set(out)) != len(out):
            raise ValueError("an address is listed twice")
        return out

    @field_validator("ttl")
    @classmethod
    def _ttl(cls, value: int) -> int:
        if value != AUTO_TTL and not 60 <= value <= 86400:
            raise ValueError(f"must be 1 (automatic) or between 60 and 86400 seconds, got {value}")
        return value

    @model_validator(mode="after")
    def _one_target(self) -> DnsConfig:
        if bool(self.addresses) == (self.target is not None):
            raise ValueError("set either 'addresses' (A/AAAA) or 'target' (a CNAME), not both")
        return self


class EdgeConfig(BaseModel):
    """``edge:``: how the Traefik in front of the swarm runs.

    ```yaml
    edge:
      image: traefik:v3          # the proxy's image (tests build one locally)
      service: shipbot-edge      # its Swarm service name
      http_port: 80              # published in host mode on every node that runs it
      https_port: 443
      address: 127.0.0.1         # where shipbot reaches those ports to probe an app's domain
      refresh_seconds: 1         # how often Traefik polls Swarm (its default, 15, drops requests)
      acme: {email: ops@example.com}   # certificates: core/edge/acme.py documents every key
    ```
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    image: str = Field(default="traefik:v3", min_length=1)
    service: str = Field(default="shipbot-edge", pattern=APP_NAME_RE.pattern)
    http_port: int = Field(default=80, ge=1, le=65535)
    https_port: int = Field(default=443, ge=1, le=65535)
    address: str = Field(default="127.0.0.1", min_length=1)
    refresh_seconds: int = Field(default=1, ge=1, le=60)
    acme: AcmeConfig = Field(default_factory=AcmeConfig)


# data: (managed databases; core/data/ builds from these)
DB_KINDS = ("postgres", "mariadb", "mysql", "redis")
DEFAULT_DB_IMAGES = {kind: f"{kind}:{{version}}" for kind in DB_KINDS}


class DataConfig(BaseModel):
    """``data:``: managed databases. ``images`` maps a kind to its image, ``{version}`` being
    what `db create --version` asked for; the official images by default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    images: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_DB_IMAGES))
    # who approves `db remove` and `restore` over a live database (someone else than the
    # requester, holding the role on every app, or named)
    approval: Approval = Field(default_factory=lambda: Approval(approvers=["admin"]))

    @field_validator("images")
    @classmethod
    def _images(cls, value: dict[str, str]) -> dict[str, str]:
        for kind, image in value.items():
            if kind not in DB_KINDS:
                raise ValueError(f"{kind!r} is not one of {', '.join(DB_KINDS)}")
            if not image or any(c.isspace() for c in image):
                raise ValueError(f"{kind}: {image!r} is not an image reference")
        return {**DEFAULT_DB_IMAGES, **value}


ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
# an app's named volume in backups.schedules (core/data/volumes.py)
VOLUME_KEY = re.compile(
    r"^[a-z][a-z0-9-]{0,40}/[a-z][a-z0-9-]{0,20}/[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$"
)


class S3Config(BaseModel):
    """``backups.s3``: where backups go; the keys are read from the variables named here."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint: str | None = Field(default=None, pattern=r"^https?://\S+$")  # None: AWS
    region: str = Field(default="us-east-1", min_length=1)
    bucket: str = Field(min_length=3, max_length=63)
    prefix: str = Field(default="shipbot", pattern=r"^[A-Za-z0-9._/-]*$")
    access_key_env: str = Field(default="SHIPBOT_S3_ACCESS_KEY", pattern=ENV_NAME)
    secret_key_env: str = Field(default="SHIPBOT_S3_SECRET_KEY", pattern=ENV_NAME)
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)


class RetentionConfig(BaseModel):
    """``backups.retention``: how many good backups of each database are kept."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    keep_last: int = Field(default=7, ge=1, le=1000)


class BackupSchedule(BaseModel):
    """``backups.schedules.NAME``: when to back up (and optionally verify) a database, as
    five-field cron expressions in UTC; ``query``: the verify check instead of row counts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cron: str
    verify: str | None = None
    query: str | None = None

    _cron = field_validator("cron", "verify")(crontab_field)


class BackupsConfig(BaseModel):
    """``backups:``: S3, retention and the sanity checks of each backup (core/data/backup.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    s3: S3Config
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    min_bytes: int = Field(default=64, ge=0)  # a smaller object is a failed backup
    min_ratio: float = Field(default=0.5, ge=0, le=1)  # of the last good backup's size
    age_recipients: list[str] = Field(default_factory=list)  # public keys: encrypt when set
    age_identity_env: str = Field(default="SHIPBOT_AGE_IDENTITY", pattern=ENV_NAME)
    # database → cron (UTC) or {cron, verify, query}: core/scheduler/jobs.py
    schedules: dict[str, BackupSchedule] = Field(default_factory=dict)
    misfire_grace_seconds: int = Field(default=600, ge=1)  # a late start still runs
    alert_grace_seconds: int = Field(default=3600, ge=0)  # silence beyond this is alerted
    heartbeat_url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    report: str | None = None  # cron: post `backup report` to the backups channels
    # apps' named volumes are tarred in a helper service of this image (core/data/volumes.py)
    volume_image: str = Field(default="busybox:latest", pattern=r"^\S+$")

    _report = field_validator("report")(crontab_field)

    @field_validator("schedules", mode="before")
    @classmethod
    def _schedules(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: {"cron": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("schedules")
    @classmethod
    def _volume_schedules(cls, value: dict[str, BackupSchedule]) -> dict[str, BackupSchedule]:
        """An app's named volume is scheduled as APP/ENV/VOLUME; it has no rows to verify."""
        for name, schedule in value.items():
            if "/" not in name:
                continue
            if not VOLUME_KEY.match(name):
                raise ValueError(f"{name!r}: a volume is scheduled as APP/ENV/VOLUME")
            if schedule.verify or schedule.query:
                raise ValueError(f"{name}: verify and query are for databases, not volumes")
        return value


class ForgeConfig(BaseModel):
    """``pipelines.forges.<github|gitlab|gitea>``: where its API answers (for comments on
    pull requests); GitLab and Gitea default to the repository's own host."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_url: str = Field(pattern=r"^https?://\S+$")


class PipelinesConfig(BaseModel):
    """``pipelines:``: git webhooks and preview environments (core/pipelines)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_previews: int = Field(default=5, ge=0, le=100)  # open previews at once, all apps
    # open previews at once of one app: one team's pull requests leave the others theirs
    max_previews_per_app: int = Field(default=3, ge=0, le=100)
    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=26_214_400)
    forges: dict[Literal["github", "gitlab", "gitea"], ForgeConfig] = Field(default_factory=dict)


class BuildConfig(BaseModel):
    """``build:``: limits on every image build (core/deploy/build.py), so a build cannot
    hold the engine or starve the apps beside it of memory."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout_seconds: float = Field(default=1800.0, gt=0, le=86400)
    memory: MemoryBytes | None = None  # each build step's container; beyond it, it is killed
    # where images are built: a server's engine (`server list`, or `local`), so builds never
    # take memory from the apps; the image is then carried to the server that runs it
    server: str | None = Field(default=None, pattern=APP_NAME_RE.pattern)


class ControlConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    admins: list[str] = Field(default_factory=list)
    secret_key: str | None = None
    notify: list[NotifyRoute] = Field(default_factory=list)
    # Bind mounts are root on the host for whoever may deploy: only these folders (and what
    # is under them) may be mounted from app.yml. shipbot's own app.yml needs
    # /var/run/docker.sock here to be deployed by shipbot.
    host_paths: list[str] = Field(default_factory=list)
    # Which apps may run on each server added over SSH (app name patterns): app.yml's
    # ``server:`` is written by whoever may deploy the app, so a server is open to no app
    # until an admin says so here. The control plane's own server takes every app.
    server_apps: dict[str, list[str]] = Field(default_factory=dict)
    # ``false``: this host has no Docker engine (shipbot runs apart, e.g. in Kubernetes) and
    # manages only the servers added over SSH; commands that name no server say which to name
    local: bool = True
    dns: DnsConfig | None = None  # Cloudflare records for app domains: core/edge/dns.py
    edge: EdgeConfig = Field(default_factory=EdgeConfig)  # the Traefik proxy: core/edge/config.py
    backups: BackupsConfig | None = None  # S3 and retention: core/data/backup.py
    data: DataConfig = Field(default_factory=DataConfig)  # managed databases: core/data/
    pipelines: PipelinesConfig = Field(default_factory=PipelinesConfig)  # core/pipelines
    drift: DriftConfig = Field(default_factory=DriftConfig)  # core/deploy/drift.py
    digest: DigestConfig | None = None  # the daily post: core/watch/digest.py
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)  # core/watch/alerts.py
    build: BuildConfig = Field(default_factory=BuildConfig)  # image build limits

    @field_validator("digest", mode="before")
    @classmethod
    def _digest(cls, value: Any) -> Any:
        return {"cron": value} if isinstance(value, str) else value

    @field_validator("host_paths")
    @classmethod
    def _absolute(cls, value: list[str]) -> list[str]:
        for path in value:
            if not path.startswith("/"):
                raise ValueError(f"{path!r} is not an absolute path")
        return [posixpath.normpath(path) for path in value]

    @field_validator("admins")
    @classmethod
    def _ids(cls, value: list[str]) -> list[str]:
        for user in value:
            if not USER_RE.match(user):
                raise ValueError(
                    f"{user!r} is not a platform:id (e.g. slack:U024BE7LH, console:alice)"
                )
        return value


def read_config(home: Path) -> Any:
    """shipbot.yml under ``home`` as plain data, unchecked ({} when there is none)."""
    path = home / CONFIG_FILE
    if not path.exists():
        return {}
    try:
        check_size(path.stat().st_size, str(path))
        raw = load_yaml(path.read_text(encoding="utf-8"), str(path)) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    return raw


def checked(model: type[M], raw: Any, where: str, section: str = "") -> M:
    """``raw`` validated as ``model``; a ``ConfigError`` naming each problem's place."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        prefix = [section] if section else []
        problems = "; ".join(
            f"{'.'.join(map(str, [*prefix, *e['loc']])) or '(top level)'}: {clip(e['msg'])}"
            for e in exc.errors()[:MAX_ERRORS]
        )
        raise ConfigError(f"{where}: {problems}") from exc


def load_config(home: Path) -> ControlConfig:
    return checked(ControlConfig, read_config(home), str(home / CONFIG_FILE))
