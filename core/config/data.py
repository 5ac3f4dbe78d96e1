"""``data:`` and ``backups:``: managed databases, S3 and backup schedules (core/data/
builds from these)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.config.parts import Approval
from core.scheduler.cron import crontab_field

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
