"""One path for every platform, as a list of steps:

parse, then ``commands.steps``: authorise → report → anchor → resolve → pre-check → gate →
lock → publish → run, with the audit written at the end of every change whatever happened,
and every reply masked for the app it is about. The request is parsed once and its app.yml
resolved once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from commands import approvals, catalog
from commands.grammar import UsageError, parse, spec_of
from commands.notify import Notifier
from commands.permissions import VIEW, Grant, Policy
from commands.replies import (
    DENIED,
    USAGE,
    Failure,
    Message,
    Reply,
    mask,
)
from commands.request import ChatRequest, describe
from commands.steps import STEPS, Step, Work, chain
from core.clock import SYSTEM, Clock
from core.config import ControlConfig, load_config
from core.engine import Engine
from core.errors import CoreError
from core.secrets import Masker
from core.store import shipbot_home

log = logging.getLogger("shipbot.commands")
# the audit's word for a change whose replies stopped being read before it said how it ended
INTERRUPTED = "interrupted"


class StartError(Exception):
    """The control plane cannot open its config, store or key; the message says which."""


class Dispatcher:
    def __init__(
        self,
        engine: Engine,
        config: ControlConfig | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.engine = engine
        self.config = config or ControlConfig()
        self.notifier = notifier or Notifier(engine.store, list(self.config.notify))
        self.steps: list[Step] = list(STEPS)

    @classmethod
    def open(cls, home: Path | None = None, clock: Clock = SYSTEM) -> Dispatcher:
        """The control plane on this host: config and store under ``home``, the local engine;
        ``clock`` is its time (tests pass one they move)."""
        try:
            home = home or shipbot_home()
            config = load_config(home)
            engine = Engine.open(home, config, clock=clock)
        except (CoreError, OSError, sqlite3.Error, ValueError) as exc:
            raise StartError(f"shipbot cannot start: {exc}") from exc
        dispatcher = cls(engine, config)
        dispatcher.reconcile()
        return dispatcher

    def reconcile(self) -> list[Message]:
        """Changes whose process stopped are marked interrupted and reported to the alert
        channels; Swarm itself kept serving whatever it ran."""
        notices = []
        for row in self.engine.interrupted():
            notice = Message(
                f"{row['kind']} of {row['app']} ({row['env']}) by {row['started_by']} was "
                "interrupted: the shipbot process running it stopped. Check `status "
                f"{row['app']}` and deploy again if needed."
            )
            self.notifier.publish("alerts", row["app"], row["env"], notice)
            notices.append(notice)
        return notices

    async def settle(self) -> None:
        """Releases whose outcome nobody saw (a restart mid-rollout) read back from Swarm."""
        await self.engine.settle()

    def policy(self) -> Policy:
        grants = [
            Grant(g["user"], g["role"], g["app"], g["env"]) for g in self.engine.store.grants()
        ]
        return Policy(self.config.admins, grants)

    def visible_apps(self, user: str) -> list[str]:
        """The registered apps ``user`` (platform:id) may view somewhere, for pickers."""
        policy = self.policy()
        return [a.name for a in self.engine.store.list_apps() if policy.sees(user, VIEW, a.name)]

    def masker(self, app: str | None, env: str | None, *extra: str | None) -> Masker:
        return Masker([*self.engine.secret_values(app, env), *filter(None, extra)])

    async def prepare(self, request: ChatRequest, parsed: Any) -> Work:
        """The parsed request as the steps take it: who, where, its app/env, policy, masks."""
        spec = spec_of(parsed)
        app, env = describe(parsed)
        policy = await asyncio.to_thread(self.policy)
        work = Work(
            parsed=parsed,
            spec=spec,
            ctx=catalog.Context(
                self.engine,
                request.identity,
                request.channel,
                request.platform,
                policy,
                self.notifier,
                request.secret,
                config=self.config,
            ),
            app=app,
            env=env,
            masker=await asyncio.to_thread(self.masker, app, env, request.secret),
            changes=spec.changes_state and getattr(parsed, "changes", True),
            shown_at=request.shown_at,
        )
        work.audit = dict(user=work.ctx.user, channel=request.channel, app=app, env=env)
        scope = getattr(parsed, "audit_scope", None)  # about another record's app (approve)
        if scope is not None:
            work.audit |= await scope(self.engine)
        return work

    async def handle(self, request: ChatRequest) -> AsyncIterator[Reply]:
        """Parse once, then run ``self.steps`` in order; the audit whatever happened."""
        try:
            parsed = parse(request.text)
        except UsageError as exc:
            yield Failure(str(exc), USAGE, exc.usage)
            return
        work = await self.prepare(request, parsed)
        try:
            # each step closes the one it drives, so a reader that stops early (a chat post
            # that failed) ends the whole chain now: its records and its lock included
            async with contextlib.aclosing(chain(self, self.steps, work)) as replies:
                async for reply in replies:
                    yield mask(reply, work.masker)
            work.finished = True
        finally:
            if not work.finished and work.outcome == "ok":  # cut off before it said so
                work.outcome = INTERRUPTED
                work.detail = "its replies stopped being read (closed or cancelled) mid-way"
            if work.changes or work.outcome == DENIED:
                await asyncio.to_thread(self._audit, work, request.text)

    def _audit(self, work: Work, text: str) -> None:
        reason = getattr(work.parsed, "break_glass", None)
        detail = f"break glass ({reason}): {work.detail}" if reason else work.detail
        self.engine.store.audit(
            **work.audit,
            command=work.masker(text),
            result=work.outcome,
            detail=work.masker(detail),
        )

    def insert_step(self, new: Step, *, before: Step) -> None:
        """Run ``new`` just before ``before`` (metrics, rate limits, a webhook audit…)."""
        self.steps.insert(self.steps.index(before), new)

    def expire_due(self) -> list[tuple[str, str, Reply]]:
        return approvals.expire_due(self.engine)

    async def run(self, request: ChatRequest) -> list[Reply]:
        return [reply async for reply in self.handle(request)]

    def close(self) -> None:
        self.engine.close()
