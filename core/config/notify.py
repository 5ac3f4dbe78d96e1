"""``notify:``: where deploy results, alerts, backups, certificates and the digest go."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

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
