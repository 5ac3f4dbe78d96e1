"""The pipelines room: git webhooks, CI tokens and preview environments."""

from __future__ import annotations

from core.config import PipelinesConfig
from core.store.schema import pipelines as schema_pipelines
from core.store.schema import versions
from rooms.capability import Capability

ROOM = Capability(
    name="pipelines",
    sections={"pipelines": PipelinesConfig},
    tables=("webhooks", "previews", "ci_tokens"),
    migrations=versions(schema_pipelines),
    commands=(
        "preview close",
        "preview deploy",
        "previews",
        "webhook secret",
        "webhook token",
    ),
)
