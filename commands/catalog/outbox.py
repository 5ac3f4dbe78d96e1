"""The outbox for admins: what is waiting, what gave up (dead letters), a retry, and the
recent notifications themselves (what a console user reads instead of a chat channel)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from commands.catalog.context import Context
from commands.grammar import arg, command, flag, option
from commands.permissions import ADMIN
from commands.replies import Failure, Message, Reply, Result, Table, decode, when
from core.config import NOTIFY_KINDS

FOLLOW_SECONDS = 1.0


def _summary(payload: str) -> str:
    fields = json.loads(payload).get("fields", {})
    return str(fields.get("title") or fields.get("text") or fields.get("message") or "")


@command("outbox", permission=ADMIN, examples=("outbox",))
class Outbox:
    """Show notifications waiting for their channel, and the ones that gave up."""

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        counts = await ctx.engine.db.in_thread(lambda: ctx.engine.store.outbox_counts())
        yield Message(
            "outbox: "
            + (", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "empty")
        )
        dead = await ctx.engine.db.in_thread(lambda: ctx.engine.store.dead_letters())
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
        if not await ctx.engine.db.in_thread(lambda: ctx.engine.store.requeue(self.id)):
            yield Failure(f"no dead notification {self.id}: see `outbox`")
            return
        yield Result(True, f"notification {self.id} is queued again")


@command(
    "notifications",
    permission=ADMIN,
    examples=("notifications", "notifications --kind alerts", "notifications --follow"),
)
class Notifications:
    """The recent notifications of every route (deploys, alerts, backups, certs, digest),
    as their channels got them; `--follow` (console) shows new ones as they are queued."""

    kind: str | None = option("text", "KIND")
    follow: bool = flag()

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        if self.kind is not None and self.kind not in NOTIFY_KINDS:
            yield Failure(
                f"no kind {self.kind!r} of notification: use one of {', '.join(NOTIFY_KINDS)}"
            )
            return
        if self.follow and ctx.platform != "console":
            yield Failure("`--follow` runs in the console (`shipbot console`); here, ask again")
            return
        rows = await asyncio.to_thread(ctx.engine.store.recent_messages, self.kind)
        if not rows and not self.follow:
            yield Message("no notifications yet" + (f" of kind {self.kind}" if self.kind else ""))
        last = 0
        while True:
            for row in rows:
                yield Message(
                    f"#{row['id']} {when(row['created_at'])} {row['kind']} → "
                    f"{row['platform']}:{row['channel']} ({row['status']})"
                )
                yield decode(row["payload"])
                last = row["id"]
            if not self.follow:
                return
            await asyncio.sleep(FOLLOW_SECONDS)
            rows = await asyncio.to_thread(ctx.engine.store.recent_messages, self.kind, last, 100)
