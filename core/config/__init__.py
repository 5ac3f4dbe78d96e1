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

import posixpath
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from core.bounded import MAX_ERRORS, check_size, clip, load_yaml
from core.config.build import BuildConfig
from core.config.data import (
    DB_KINDS,
    DEFAULT_DB_IMAGES,
    ENV_NAME,
    VOLUME_KEY,
    BackupSchedule,
    BackupsConfig,
    DataConfig,
    RetentionConfig,
    S3Config,
)
from core.config.edge import AUTO_TTL, LETS_ENCRYPT, AcmeConfig, DnsConfig, EdgeConfig
from core.config.notify import NOTIFY_KINDS, NotifyRoute
from core.config.pipelines import ForgeConfig, PipelinesConfig
from core.config.watch import AlertsConfig, DigestConfig, DriftConfig
from core.errors import CoreError
from core.names import USER_RE

__all__ = [
    "AUTO_TTL",
    "CONFIG_FILE",
    "DB_KINDS",
    "DEFAULT_DB_IMAGES",
    "ENV_NAME",
    "LETS_ENCRYPT",
    "NOTIFY_KINDS",
    "VOLUME_KEY",
    "AcmeConfig",
    "AlertsConfig",
    "BackupSchedule",
    "BackupsConfig",
    "BuildConfig",
    "ConfigError",
    "ControlConfig",
    "DataConfig",
    "DigestConfig",
    "DnsConfig",
    "DriftConfig",
    "EdgeConfig",
    "ForgeConfig",
    "NotifyRoute",
    "PipelinesConfig",
    "RetentionConfig",
    "S3Config",
    "checked",
    "load_config",
    "read_config",
]


CONFIG_FILE = "shipbot.yml"
M = TypeVar("M", bound=BaseModel)


class ConfigError(CoreError):
    """shipbot.yml is unreadable or invalid."""


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

    @model_validator(mode="after")
    def _dns_target(self) -> ControlConfig:
        # apart (``local: false``) every server's addresses may come from chat alone
        dns = self.dns
        if self.local and dns is not None and not dns.own_target and not dns.servers:
            raise ValueError(
                "dns: set either 'addresses' (A/AAAA) or 'target' (a CNAME) for this server, "
                "or each server's addresses under 'servers'"
            )
        return self

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
