"""One path for every platform, as a list of steps:

parse → authorise → resolve → approval gate → lock → run → publish, with the audit written
at the end of every change whatever happened, and every reply masked for the app it is about.
The request is parsed once and its app.yml resolved once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from commands import approvals, catalog, locks
from commands.grammar import CommandSpec, UsageError, parse, render, spec_of
from commands.notify import Notifier
from commands.permissions import ADMIN, VIEW, Denied, Grant, Policy
from commands.replies import (
    DENIED,
    FAILED,
    INTERNAL,
    USAGE,
    Failure,
    Message,
    Reply,
    Result,
    mask,
)
from commands.request import ChatRequest, describe
from core.config import ControlConfig, load_config
from core.engine import Engine
from core.errors import BuildError, CoreError
from core.secrets import Masker
from core.store import shipbot_home

log = logging.getLogger("shipbot.commands")
# the audit's word for a change whose replies stopped being read before it said how it ended
INTERRUPTED = "interrupted"


class StartError(Exception):
    """The control plane cannot open its config, store or key; the message says which."""


@dataclass
class Work:
    """One request on its way through the steps; an approval swaps in the released one."""

    parsed: Any
    spec: CommandSpec
    ctx: catalog.Context
    app: str | None
    env: str | None
    masker: Masker
    changes: bool
    audit: dict[str, Any] = field(default_factory=dict)
    outcome: str = "ok"
    detail: str = ""
    finished: bool = False  # the command said how it ended, or its steps ran to the end


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

    @classmethod
    def open(cls, home: Path | None = None) -> Dispatcher:
        """The control plane on this host: config and store under ``home``, the local engine."""
        try:
            home = home or shipbot_home()
            config = load_config(home)
            engine = Engine.open(home, config)
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

    # the steps
    async def handle(self, request: ChatRequest) -> AsyncIterator[Reply]:
        try:
            parsed = parse(request.text)
        except UsageError as exc:
            yield Failure(str(exc), USAGE, exc.usage)
            return
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
                request.secret,
                config=self.config,
                notifier=self.notifier,
            ),
            app=app,
            env=env,
            masker=await asyncio.to_thread(self.masker, app, env, request.secret),
            changes=spec.changes_state and getattr(parsed, "changes", True),
        )
        work.audit = dict(user=work.ctx.user, channel=request.channel, app=app, env=env)
        scope = getattr(parsed, "audit_scope", None)  # about another record's app (approve)
        if scope is not None:
            work.audit |= await scope(self.engine)
        try:
            # each step closes the one it drives, so a reader that stops early (a chat post
            # that failed) ends the whole chain now: its records and its lock included
            async with contextlib.aclosing(self._steps(work)) as replies:
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

    async def _steps(self, work: Work) -> AsyncIterator[Reply]:
        if not self._authorised(work):
            work.outcome = DENIED
            work.detail = work.ctx.policy.denial(
                work.ctx.user, work.spec.permission, work.app, work.env
            )
            yield Failure(work.detail, DENIED)
            return
        try:
            if work.spec.resolves:
                await self._resolve(work)
            precheck = getattr(work.parsed, "precheck", None)
            if precheck is not None:
                precheck(work.ctx)
            if work.spec.approvable and work.changes:
                async for reply in self._gate(work):
                    yield reply
                if work.outcome != "ok":
                    return
            async with contextlib.aclosing(self._locked(work)) as replies:
                async for reply in replies:
                    yield reply
        except UsageError as exc:
            work.outcome, work.detail = USAGE, str(exc)
            yield Failure(str(exc), USAGE, exc.usage or work.spec.usage)
        except Denied as exc:
            work.outcome, work.detail = DENIED, str(exc)
            yield Failure(str(exc), DENIED)
        except BuildError as exc:
            work.outcome, work.detail = FAILED, str(exc)
            yield Failure(str(exc), FAILED, log_tail=tuple(exc.log_tail))
        except CoreError as exc:
            work.outcome, work.detail = FAILED, str(exc)
            yield Failure(str(exc), FAILED)
        except Exception:
            log.exception("command %r from %s failed", render(work.parsed), work.ctx.user)
            work.outcome, work.detail = "error", "internal error"
            yield Failure(
                "shipbot hit an internal error running this command; the details are in its "
                "log. Check `status` before trying again.",
                INTERNAL,
            )

    def _authorised(self, work: Work) -> bool:
        # Reading commands that name no environment (status APP) or no app at all (status,
        # apps list) need the view role somewhere in scope, and show only what it covers.
        policy, user, permission = work.ctx.policy, work.ctx.user, work.spec.permission
        if permission == VIEW and work.app is None:
            return policy.may_ever(user, VIEW)
        if permission == VIEW and work.env is None:
            return policy.sees(user, VIEW, work.app)
        return policy.allows(user, permission, work.app, work.env)

    async def _resolve(self, work: Work) -> None:
        assert work.app is not None
        resolved = await self.engine.resolve(
            work.app,
            work.env,
            getattr(work.parsed, "ref", None),
            getattr(work.parsed, "image", None),
        )
        work.ctx = dataclasses.replace(work.ctx, resolved=resolved)

    async def _gate(self, work: Work) -> AsyncIterator[Reply]:
        """Hold a change for approval where its environment asks for one; admins may pass
        with an audited, announced ``--break-glass REASON``."""
        reason = getattr(work.parsed, "break_glass", None)
        if reason is not None:
            if not work.ctx.policy.allows(work.ctx.user, ADMIN, work.app, work.env):
                work.outcome = DENIED
                work.detail = "--break-glass is for admins of this app and environment"
                yield Failure(work.detail, DENIED)
                return
            notice = Message(
                f"⚠️ break glass: {work.ctx.user} ran `{render(work.parsed)}` on "
                f"{work.app or 'every app'}/{work.env or 'every environment'} without "
                f"approval: {reason}"
            )
            await asyncio.to_thread(self.notifier.publish, "alerts", work.app, work.env, notice)
            yield notice
            return
        if hasattr(work.parsed, "review"):  # about no app (a database): its own rule
            async with contextlib.aclosing(self._review(work)) as replies:
                async for reply in replies:
                    yield reply
            return
        assert work.app is not None and work.env is not None
        rule = await approvals.rule(self.engine, work.app, work.env, work.ctx.resolved)
        if rule is None:
            return
        request = await approvals.ask(
            self.engine,
            await approvals.pinned(self.engine, work.parsed, work.app, work.env),
            user=work.ctx.user,
            channel=work.ctx.channel,
            platform=work.ctx.platform,
            app=work.app,
            env=work.env,
            approval=rule,
            resolved=work.ctx.resolved,
            secret=work.ctx.secret,
        )
        work.outcome, work.detail = "pending", f"approval {request.id}"
        yield request

    async def _review(self, work: Work) -> AsyncIterator[Reply]:
        review: approvals.Review | None = await work.parsed.review(work.ctx)
        if review is None:
            return
        request = await approvals.ask(
            self.engine,
            work.parsed,
            user=work.ctx.user,
            channel=work.ctx.channel,
            platform=work.ctx.platform,
            app=work.app or "*",  # approvers and the requester need their role on every app
            env=work.env or "*",
            approval=review.rule,
            resolved=None,
            secret=work.ctx.secret,
            digest=review.digest,
            details=review.details,
        )
        work.outcome, work.detail = "pending", f"approval {request.id}"
        yield request

    async def _locked(self, work: Work) -> AsyncIterator[Reply]:
        held: contextlib.AbstractAsyncContextManager[None] = contextlib.nullcontext()
        if work.spec.locks and work.changes:
            assert work.app is not None and work.env is not None
            ctx = work.ctx
            who = f"{ctx.user}, approved by {ctx.approved_by}" if ctx.approved_by else ctx.user
            what = f"`{render(work.parsed)}` for {who}"
            held = locks.hold(self.engine.store, work.app, work.env, ctx.user, what)
        async with held, contextlib.aclosing(self._run(work)) as replies:
            async for reply in replies:
                yield reply

    async def _run(self, work: Work) -> AsyncIterator[Reply]:
        async with contextlib.aclosing(work.parsed.run(work.ctx)) as items:
            async for item in items:
                if isinstance(item, approvals.Released):
                    async with contextlib.aclosing(self._released(work, item)) as replies:
                        async for reply in replies:
                            yield reply
                    continue
                self._note(work, item)
                if isinstance(item, Result) and work.spec.locks:  # also to the change's channels
                    await asyncio.to_thread(
                        self.notifier.publish,
                        "deploys",
                        work.app,
                        work.env,
                        mask(item, work.masker),
                        skip=(work.ctx.platform, work.ctx.channel),
                    )
                yield item

    async def _released(self, work: Work, released: approvals.Released) -> AsyncIterator[Reply]:
        """An approval completed: the request runs as its requester, through the lock."""
        row = released.row
        approved = Work(
            parsed=released.request,
            spec=spec_of(released.request),
            ctx=dataclasses.replace(
                work.ctx,
                user=row["requester"],
                channel=row["channel"],
                platform=row["platform"],
                secret=released.secret,
                approved_by=released.approved_by,
                resolved=released.resolved,
            ),
            app=row["app"],
            env=row["env"],
            masker=await asyncio.to_thread(self.masker, row["app"], row["env"], released.secret),
            changes=True,
        )
        work.masker, work.audit["app"], work.audit["env"] = approved.masker, row["app"], row["env"]
        ok = False
        try:  # approvals.approve checked the requester's grant just now, with this policy
            async with contextlib.aclosing(self._locked(approved)) as replies:
                async for reply in replies:
                    ok = ok or (isinstance(reply, Result) and reply.ok)
                    yield reply
        finally:
            work.outcome, work.detail = approved.outcome, approved.detail
            work.finished = approved.finished
            await asyncio.to_thread(approvals.finish, self.engine, released, ok)

    @staticmethod
    def _note(work: Work, reply: Reply) -> None:
        if isinstance(reply, Result):
            work.outcome, work.detail = ("ok" if reply.ok else "failed"), reply.title
            work.finished = True
        elif isinstance(reply, Failure):
            work.outcome, work.detail = reply.kind, reply.message
            work.finished = True

    def expire_due(self) -> list[tuple[str, str, Reply]]:
        return approvals.expire_due(self.engine)

    async def run(self, request: ChatRequest) -> list[Reply]:
        return [reply async for reply in self.handle(request)]

    def close(self) -> None:
        self.engine.close()
