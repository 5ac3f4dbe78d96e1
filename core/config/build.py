"""``build:``: limits on every image build (core/deploy/build.py)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from core.config.parts import MemoryBytes
from core.names import APP_NAME_RE


class BuildConfig(BaseModel):
    """``build:``: limits on every image build (core/deploy/build.py), so a build cannot
    hold the engine or starve the apps beside it of memory."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout_seconds: float = Field(default=1800.0, gt=0, le=86400)
    memory: MemoryBytes | None = None  # each build step's container; beyond it, it is killed
    # where images are built: a server's engine (`server list`, or `local`), so builds never
    # take memory from the apps; the image is then carried to the server that runs it
    server: str | None = Field(default=None, pattern=APP_NAME_RE.pattern)
