"""The control plane's own settings: ``$SHIPBOT_HOME/shipbot.yml``.

```yaml
admins: [console:alice, slack:U024BE7LH]   # bootstrap admins, by immutable platform id
secret_key: null                           # Fernet key; default: secret.key beside the store
notify:                                    # where deploy results, alerts, backups, certs go
  - {platform: slack, channel: C0123456, apps: ["*"], envs: [production], kinds: [deploys, alerts]}
host_paths: []                             # host folders app.yml may bind-mount (none by default)
dns: {zone: example.com, addresses: [203.0.113.10]}  # Cloudflare records: core/edge/dns.py
edge: {image: traefik:v3, http_port: 80}   # the Traefik proxy (core/edge/config.py has every key)
```
"""

from __future__ import annotations

import posixpath
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.edge.config import EdgeConfig
from core.edge.dns import DnsConfig
from core.errors import CoreError
from core.names import USER_RE

CONFIG_FILE = "shipbot.yml"


class ConfigError(CoreError):
    """shipbot.yml is unreadable or invalid."""


NOTIFY_KINDS = ("deploys", "alerts", "backups", "certs")


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


class ControlConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    admins: list[str] = Field(default_factory=list)
    secret_key: str | None = None
    notify: list[NotifyRoute] = Field(default_factory=list)
    # Bind mounts are root on the host for whoever may deploy: only these folders (and what
    # is under them) may be mounted from app.yml. shipbot's own app.yml needs
    # /var/run/docker.sock here to be deployed by shipbot.
    host_paths: list[str] = Field(default_factory=list)
    dns: DnsConfig | None = None  # Cloudflare records for app domains: core/edge/dns.py
    edge: EdgeConfig = Field(default_factory=EdgeConfig)  # the Traefik proxy: core/edge/config.py

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


def load_config(home: Path) -> ControlConfig:
    path = home / CONFIG_FILE
    if not path.exists():
        return ControlConfig()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return ControlConfig.model_validate(raw)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '(top level)'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}") from exc
