"""The control room: who may do what, approvals, the audit, people and the outbox."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from core.scheduler.clocked import Every
from core.store.schema import control as schema_control
from core.store.schema import versions
from rooms.capability import Capability, Periodic, Running, Schedule

log = logging.getLogger("shipbot.serve")


def periodic(root: Running) -> Iterable[Periodic]:
    """Unanswered approval requests expire every round (their notices go through the outbox)."""

    async def expire() -> None:
        for platform, channel, message in root.dispatcher.expire_due():
            log.info("%s:%s %s", platform, channel, getattr(message, "text", message))

    yield Schedule("approvals/expire", Every(root.interval), expire)


ROOM = Capability(
    name="control",
    sections={"admins": None, "secret_key": None, "notify": None},
    tables=("grants", "approvals", "locks", "audit", "outbox", "deliveries", "people", "identity"),
    migrations=versions(schema_control),
    commands=(
        "audit",
        "grant",
        "grants",
        "help",
        "revoke",
        "unlock",
        "whoami",
        "approve",
        "reject",
        "notifications",
        "outbox",
        "outbox retry",
        "people",
        "people link",
        "people unlink",
    ),
    periodic=periodic,
)
