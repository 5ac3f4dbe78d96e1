"""The pipelines room: git webhooks, CI tokens and preview environments."""

from __future__ import annotations

from commands.catalog import pipelines
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
        pipelines.PreviewClose,
        pipelines.PreviewDeploy,
        pipelines.PreviewList,
        pipelines.WebhookSecret,
        pipelines.WebhookToken,
    ),
)
