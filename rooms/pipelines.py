"""The pipelines room: git webhooks, CI tokens and preview environments."""

from __future__ import annotations

from commands.catalog import pipelines
from core.config import PipelinesConfig
from rooms.capability import Capability

ROOM = Capability(
    name="pipelines",
    sections={"pipelines": PipelinesConfig},
    tables=("webhooks", "previews", "ci_tokens"),
    migrations=(11, 13, 18),
    commands=(
        pipelines.PreviewClose,
        pipelines.PreviewDeploy,
        pipelines.PreviewList,
        pipelines.WebhookSecret,
        pipelines.WebhookToken,
    ),
)
