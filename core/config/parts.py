"""The pieces of app.yml that shipbot.yml and every command share: the default environment's
name, sizes and durations as app.yml writes them, and approval rules. Apart from the app.yml
model (core/appspec), so that reading shipbot.yml or answering `whoami` does not build it."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from core.durations import parse_duration_ns
from core.names import DEFAULT_ENV, ROLE_NAMES, USER_RE

__all__ = ["DEFAULT_ENV", "Approval", "Duration", "MemoryBytes", "Strict"]


def _memory_bytes(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    from docker.errors import DockerException  # the SDK loads when a size is first read
    from docker.utils import parse_bytes

    try:
        return parse_bytes(str(value).strip().lower().removesuffix("ib").removesuffix("b") or "x")
    except DockerException as exc:
        raise ValueError(f"expected a size such as 256M or 1G, got {value!r}") from exc


Duration = Annotated[int, BeforeValidator(parse_duration_ns)]
MemoryBytes = Annotated[int, BeforeValidator(_memory_bytes), Field(gt=0)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Approval(Strict):
    """Who must approve a deploy or rollback to an environment before it runs."""

    required: int = Field(default=1, ge=1, le=5)
    approvers: list[str] = Field(default_factory=lambda: ["deployer", "admin"], min_length=1)
    expires: Duration = parse_duration_ns("30m")

    @field_validator("approvers")
    @classmethod
    def _roles_or_users(cls, value: list[str]) -> list[str]:
        for item in value:
            if item not in ROLE_NAMES and not USER_RE.match(item):
                raise ValueError(
                    f"{item!r} is neither a role ({', '.join(ROLE_NAMES)}) nor a platform:id"
                )
        return value
