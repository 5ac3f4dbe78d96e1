"""The records the store hands out, and the statuses a release moves through."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# A release's lifecycle.
RELEASE_DEPLOYING = "deploying"
RELEASE_LIVE = "live"
RELEASE_SUPERSEDED = "superseded"
RELEASE_FAILED = "failed"
# Its deployment was interrupted: only Swarm's labels can tell whether it went live.
RELEASE_UNKNOWN = "unknown"
RELEASE_STATUSES = frozenset(
    {RELEASE_DEPLOYING, RELEASE_LIVE, RELEASE_SUPERSEDED, RELEASE_FAILED, RELEASE_UNKNOWN}
)


@dataclass(frozen=True)
class App:
    name: str
    source_kind: str  # "path" or "git"
    source: str
    ref: str | None
    created_by: str
    created_at: float
    credential: str | None = None  # a git credential, encrypted by the vault


@dataclass(frozen=True)
class Release:
    id: int
    app: str
    env: str
    number: int
    image: str
    image_id: str | None
    source_ref: str | None
    spec: dict[str, Any]
    status: str
    deployed_by: str
    created_at: float
    finished_at: float | None
    message: str | None
    previous: int | None = None  # the release live in its environment when it was made

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Release:
        return cls(**{**row, "spec": json.loads(row["spec"] or "{}")})
