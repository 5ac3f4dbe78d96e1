"""shipbot.yml's sections for what watches the swarms: ``drift:``, ``digest:`` and
``alerts:`` (with the guard after a deploy); core/config/__init__.py holds them in
``ControlConfig``."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from core.bounded import quote
from core.durations import parse_duration_ns
from core.scheduler.cron import crontab_field


def seconds(value: Any) -> Any:
    """A number of seconds (``300``) or a duration (``5m``, ``1m30s``), as seconds; anything
    else is refused with what it should look like."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            total = parse_duration_ns(value) / 1e9
        except ValueError:
            pass
        else:
            return int(total) if total.is_integer() else total
    raise ValueError(
        f"expected a number of seconds (300) or a duration such as 5m, 90s or 1m30s, "
        f"got {quote(value)}"
    )


Seconds = Annotated[float, BeforeValidator(seconds)]
WholeSeconds = Annotated[int, BeforeValidator(seconds)]


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

    check_seconds: Seconds = Field(default=30.0, gt=0)  # periodic checks besides the events
    crash_restarts: int = Field(default=3, ge=1)  # failed tasks within the window: a crash loop
    crash_window_seconds: int = Field(default=600, ge=1)
    below_replicas_seconds: int = Field(default=120, ge=0)  # below desired this long: alert
    recover_seconds: int = Field(default=60, ge=0)  # quiet this long after a crash or OOM
    disk_percent: int = Field(default=90, ge=1, le=100)  # of the engine's data root's disk
    memory_percent: int = Field(default=90, ge=1, le=100)  # of the node's memory in use
    usage_seconds: float = Field(default=300.0, gt=0)  # how often nodes are measured
    usage_image: str | None = Field(default="busybox:latest", min_length=1)  # None: no probe
    log_lines: int = Field(default=10, ge=1, le=100)
    guard_seconds: WholeSeconds = Field(default=300, ge=0)  # after a deploy's success; 0: no guard
