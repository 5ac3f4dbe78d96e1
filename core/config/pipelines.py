"""``pipelines:``: git webhooks and preview environments (core/pipelines)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


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
