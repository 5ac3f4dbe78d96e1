"""The outbox for admins: what is waiting, what gave up (dead letters), and a retry."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from commands.catalog.context import Context
from commands.grammar import arg, command
from commands.permissions import ADMIN
from commands.replies import Failure, Message, Reply, Result, Table, when


def _summary(payload: str) -> str:
    fields = json.loads(payload).get("fields", {})
    return str(fields.get("title") or fields.get("text") or fields.get("message") or "")


@command("outbox", permission=ADMIN, examples=("outbox",))
class Outbox:
    """Show notifications waiting for their channel, and the ones that gave up."""

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        counts = await ctx.engine.db.outbox_counts()
        yield Message(
            "outbox: "
            + (", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "empty")
        )
        dead = await ctx.engine.db.dead_letters()
        if dead:
            yield Table(
                ("id", "where", "kind", "tries", "created", "last error", "message"),
                tuple(
                    (
                        str(row["id"]),
                        f"{row['platform']}:{row['channel']}",
                        row["kind"],
                        str(row["attempts"]),
                        when(row["created_at"]),
                        row["last_error"] or "",
                        _summary(row["payload"]),
                    )
                    for row in dead
                ),
                title="gave up (retry with `outbox retry ID`)",
            )


@command("outbox retry", permission=ADMIN, changes_state=True, examples=("outbox retry 12",))
class OutboxRetry:
    """Send a notification that gave up once more (its tries start again)."""

    id: int = arg("count", "ID")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        if not await ctx.engine.db.requeue(self.id):
            yield Failure(f"no dead notification {self.id}: see `outbox`")
            return
        yield Result(True, f"notification {self.id} is queued again")
