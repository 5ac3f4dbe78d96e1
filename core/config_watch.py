"""shipbot.yml's sections for what watches the swarms: ``drift:``, ``digest:`` and
``alerts:`` (with the guard after a deploy); core/config.py holds them in ``ControlConfig``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.cron import crontab_field


class DriftConfig(BaseModel):
    """``drift:``: how often ``shipbot serve`` compares the store with what runs
    (core/deploy/drift.py); new differences go to the ``alerts`` channels."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    watch_seconds: float = Field(default=300.0, gt=0)


class DigestConfig(BaseModel):
    """``digest:``: the daily post to every channel whose route takes ``digest`` (by
    default all): deploys and failures of the last ``hours``, certificates, backups, open
    alerts (core/watch/digest.py). ``digest: "0 8 * * *"`` is short for ``{cron: ...}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cron: str = "0 8 * * *"  # UTC, crontab's fields
    hours: int = Field(default=24, ge=1, le=24 * 31)
    misfire_grace_seconds: int = Field(default=3600, ge=1)

    _cron = field_validator("cron")(crontab_field)


class AlertsConfig(BaseModel):
    """Failure alerts and the guard after a deploy (core/watch/alerts.py, core/watch/guard.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    check_seconds: float = Field(default=30.0, gt=0)  # periodic checks besides the events
    crash_restarts: int = Field(default=3, ge=1)  # failed tasks within the window: a crash loop
    crash_window_seconds: int = Field(default=600, ge=1)
    below_replicas_seconds: int = Field(default=120, ge=0)  # below desired this long: alert
    recover_seconds: int = Field(default=60, ge=0)  # quiet this long after a crash or OOM
    disk_percent: int = Field(default=90, ge=1, le=100)  # of the engine's data root's disk
    memory_percent: int = Field(default=90, ge=1, le=100)  # of the node's memory in use
    usage_seconds: float = Field(default=300.0, gt=0)  # how often nodes are measured
    usage_image: str | None = Field(default="busybox:latest", min_length=1)  # None: no probe
    log_lines: int = Field(default=10, ge=1, le=100)
    guard_seconds: int = Field(default=300, ge=0)  # after a deploy's success; 0: no guard
