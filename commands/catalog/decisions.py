"""Approve and reject: the chat side of ``commands.approvals``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from commands import approvals
from commands.catalog.context import Context
from commands.grammar import arg, command
from commands.permissions import PUBLIC
from commands.replies import Reply
from core.engine import Engine


async def decided_scope(engine: Engine, approval_id: int) -> dict[str, Any]:
    """The app and environment of the request a decision is about, for its audit row, so
    `audit APP` lists who approved, rejected or tried to; nothing for an unknown id."""
    row = await asyncio.to_thread(engine.store.approval, approval_id)
    return {"app": row["app"], "env": row["env"]} if row else {}


@command("approve", permission=PUBLIC, changes_state=True, examples=("approve 17",))
class Approve:
    """Approve a pending change; it runs once enough people approved.

    The last approval yields the released request; the dispatcher runs it as its requester.
    """

    id: int = arg("count", "ID")

    async def audit_scope(self, engine: Engine) -> dict[str, Any]:
        return await decided_scope(engine, self.id)

    async def run(self, ctx: Context) -> AsyncIterator[Reply | approvals.Released]:
        replies, released = await approvals.approve(ctx.engine, ctx.policy, ctx.user, self.id)
        for reply in replies:
            yield reply
        if released is not None:
            yield released


@command("reject", permission=PUBLIC, changes_state=True, examples=("reject 17",))
class Reject:
    """Turn down a pending change (the requester may withdraw it too)."""

    id: int = arg("count", "ID")

    async def audit_scope(self, engine: Engine) -> dict[str, Any]:
        return await decided_scope(engine, self.id)

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        yield await approvals.reject(ctx.engine, ctx.policy, ctx.user, self.id)
