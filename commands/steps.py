"""The dispatcher's steps, one signature each, run in one ordered list (bolt-python's
middleware): authorise, report, anchor, resolve, pre-check, gate, lock, publish, run.

A step is ``step(flow, work, call_next)``: it may reply, change ``work``, stop the chain (by
not calling ``call_next``) or wrap what the steps after it reply. ``flow`` is what the steps
share (the dispatcher: its engine, notifier and masks). Each step closes the chain it drives,
so a reader that stops early ends the whole chain now, its records and its lock included.
Metrics, rate limits or a webhook audit are one more step inserted in the list.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from commands import approvals, catalog, locks
from commands.grammar import CommandSpec, UsageError, render, spec_of
from commands.notify import Notifier
from commands.permissions import ADMIN, VIEW, Denied
from commands.replies import DENIED, FAILED, INTERNAL, USAGE, Failure, Message, Reply, Result
from commands.replies import mask as mask_reply
from core.engine import Engine
from core.errors import BuildError, CoreError
from core.secrets import Masker

log = logging.getLogger("shipbot.commands")


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
    # the adapter's answer to "which message shows this request's replies now?" (None: none)
    shown_at: Callable[[], str | None] | None = None


class Flow(Protocol):
    """What the steps share: the dispatcher is one."""

    engine: Engine
    notifier: Notifier
    steps: list[Step]

    def masker(self, app: str | None, env: str | None, *extra: str | None) -> Masker: ...


Next = Callable[[], AsyncIterator[Reply]]
Step = Callable[[Flow, Work, Next], AsyncIterator[Reply]]


def chain(flow: Flow, steps: Sequence[Step], work: Work) -> AsyncIterator[Reply]:
    """The replies of ``steps`` run in order on ``work``; the last one's ``call_next`` is empty."""

    def at(i: int) -> AsyncIterator[Reply]:
        if i == len(steps):
            return _nothing()
        return steps[i](flow, work, lambda: at(i + 1))

    return at(0)


async def _nothing() -> AsyncIterator[Reply]:
    return
    yield  # an async generator that replies nothing


def follow(call_next: Next) -> contextlib.aclosing[AsyncIterator[Reply]]:
    """``async with follow(call_next) as replies``: the rest of the chain, closed with us."""
    return contextlib.aclosing(call_next())


# the steps, in the order the dispatcher runs them
async def authorise(flow: Flow, work: Work, call_next: Next) -> AsyncIterator[Reply]:
    """Reading commands that name no environment (status APP) or no app at all (status, apps
    list) need the view role somewhere in scope, and show only what it covers."""
    policy, user, permission = work.ctx.policy, work.ctx.user, work.spec.permission
    if permission == VIEW and work.app is None:
        allowed = policy.may_ever(user, VIEW)
    elif permission == VIEW and work.env is None:
        allowed = policy.sees(user, VIEW, work.app)
    else:
        allowed = policy.allows(user, permission, work.app, work.env)
    if not allowed:
        work.outcome = DENIED
        work.detail = policy.denial(user, permission, work.app, work.env)
        yield Failure(work.detail, DENIED)
        return
    async with follow(call_next) as replies:
        async for reply in replies:
            yield reply


async def report(flow: Flow, work: Work, call_next: Next) -> AsyncIterator[Reply]:
    """What went wrong in the steps after, as a reply that says what to do, and the outcome."""
    try:
        async with follow(call_next) as replies:
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


async def anchor(flow: Flow, work: Work, call_next: Next) -> AsyncIterator[Reply]:
    """Once every reply is shown, the message that shows a deploy's result is remembered
    (``Work.shown_at``, from the adapter), so the guard's later word edits it and answers
    under it: the same for every chat."""
    results = []
    async with follow(call_next) as replies:
        async for reply in replies:
            if isinstance(reply, Result):
                results.append(reply)
            yield reply
    message = work.shown_at() if results and work.shown_at is not None else None
    if message is None:
        return
    from commands.watching import anchor as anchor_result  # the watch loads when it is used

    try:
        ctx = work.ctx
        plane = flow.engine.plane
        await asyncio.to_thread(
            anchor_result, plane, ctx.platform, ctx.channel, results[-1], message
        )
    except Exception:  # the deploy happened; its guard only loses where to answer
        log.exception("cannot remember message %s for the guard", message)


async def resolve(flow: Flow, work: Work, call_next: Next) -> AsyncIterator[Reply]:
    """Read app.yml at the request's ref once, before the gate sees it."""
    if work.spec.resolves:
        assert work.app is not None
        resolved = await flow.engine.resolve(
            work.app,
            work.env,
            getattr(work.parsed, "ref", None),
            getattr(work.parsed, "image", None),
        )
        work.ctx = dataclasses.replace(work.ctx, resolved=resolved)
    async with follow(call_next) as replies:
        async for reply in replies:
            yield reply


async def precheck(flow: Flow, work: Work, call_next: Next) -> AsyncIterator[Reply]:
    """The command's own check before anything is asked or held (raises what it finds)."""
    check = getattr(work.parsed, "precheck", None)
    if check is not None:
        check(work.ctx)
    async with follow(call_next) as replies:
        async for reply in replies:
            yield reply


async def gate(flow: Flow, work: Work, call_next: Next) -> AsyncIterator[Reply]:
    """Hold a change for approval where its environment asks for one; admins may pass with an
    audited, announced ``--break-glass REASON``."""
    if work.spec.approvable and work.changes:
        async with contextlib.aclosing(_gate(flow, work)) as replies:
            async for reply in replies:
                yield reply
        if work.outcome != "ok":  # refused, or held for approval
            return
    async with follow(call_next) as replies:
        async for reply in replies:
            yield reply


async def _gate(flow: Flow, work: Work) -> AsyncIterator[Reply]:
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
        await asyncio.to_thread(flow.notifier.publish, "alerts", work.app, work.env, notice)
        yield notice
        return
    if hasattr(work.parsed, "review"):  # about no app (a database): its own rule
        review: approvals.Review | None = await work.parsed.review(work.ctx)
        if review is None:
            return
        yield await _ask(
            flow,
            work,
            work.parsed,
            app=work.app or "*",  # approvers and the requester need their role on every app
            env=work.env or "*",
            approval=review.rule,
            resolved=None,
            digest=review.digest,
            details=review.details,
        )
        return
    assert work.app is not None and work.env is not None
    rule = await approvals.rule(flow.engine, work.app, work.env, work.ctx.resolved)
    if rule is None:
        return
    pinned = await approvals.pinned(flow.engine, work.parsed, work.app, work.env)
    yield await _ask(
        flow, work, pinned, app=work.app, env=work.env, approval=rule, resolved=work.ctx.resolved
    )


async def _ask(flow: Flow, work: Work, request: Any, **kwargs: Any) -> Reply:
    asked = await approvals.ask(
        flow.engine,
        request,
        user=work.ctx.user,
        channel=work.ctx.channel,
        platform=work.ctx.platform,
        secret=work.ctx.secret,
        **kwargs,
    )
    work.outcome, work.detail = "pending", f"approval {asked.id}"
    return asked


async def lock(flow: Flow, work: Work, call_next: Next) -> AsyncIterator[Reply]:
    """A change that locks holds its app/env's lock while the steps after it run."""
    held: contextlib.AbstractAsyncContextManager[None] = contextlib.nullcontext()
    if work.spec.locks and work.changes:
        assert work.app is not None and work.env is not None
        ctx = work.ctx
        who = f"{ctx.user}, approved by {ctx.approved_by}" if ctx.approved_by else ctx.user
        what = f"`{render(work.parsed)}` for {who}"
        held = locks.hold(flow.engine.store, work.app, work.env, ctx.user, what)
    async with held, follow(call_next) as replies:
        async for reply in replies:
            yield reply


async def publish(flow: Flow, work: Work, call_next: Next) -> AsyncIterator[Reply]:
    """A locking change's result also goes to the deploys channels (not back to its own)."""
    async with follow(call_next) as replies:
        async for reply in replies:
            if isinstance(reply, Result) and work.spec.locks:
                await asyncio.to_thread(
                    flow.notifier.publish,
                    "deploys",
                    work.app,
                    work.env,
                    mask_reply(reply, work.masker),
                    skip=(work.ctx.platform, work.ctx.channel),
                )
            yield reply


async def run(flow: Flow, work: Work, call_next: Next) -> AsyncIterator[Reply]:
    """The command itself; an approval it completes runs the released request through the
    steps from ``lock`` on, as its requester."""
    async with contextlib.aclosing(work.parsed.run(work.ctx)) as items:
        async for item in items:
            if isinstance(item, approvals.Released):
                async with contextlib.aclosing(_released(flow, work, item)) as replies:
                    async for reply in replies:
                        yield reply
                continue
            note(work, item)
            yield item
    async with follow(call_next) as replies:
        async for reply in replies:
            yield reply


async def _released(flow: Flow, work: Work, released: approvals.Released) -> AsyncIterator[Reply]:
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
        masker=await asyncio.to_thread(flow.masker, row["app"], row["env"], released.secret),
        changes=True,
    )
    work.masker, work.audit["app"], work.audit["env"] = approved.masker, row["app"], row["env"]
    ok = False
    try:  # approvals.approve checked the requester's grant just now, with this policy
        async with contextlib.aclosing(chain(flow, after(flow.steps, lock), approved)) as replies:
            async for reply in replies:
                ok = ok or (isinstance(reply, Result) and reply.ok)
                yield reply
    finally:
        work.outcome, work.detail = approved.outcome, approved.detail
        work.finished = approved.finished
        await asyncio.to_thread(approvals.finish, flow.engine, released, ok)


def after(steps: Sequence[Step], first: Step) -> list[Step]:
    """The steps from ``first`` on (a released approval runs these)."""
    return list(steps[steps.index(first) :])


def note(work: Work, reply: Reply) -> None:
    """A result or failure says how the command ended."""
    if isinstance(reply, Result):
        work.outcome, work.detail = ("ok" if reply.ok else "failed"), reply.title
        work.finished = True
    elif isinstance(reply, Failure):
        work.outcome, work.detail = reply.kind, reply.message
        work.finished = True


STEPS: tuple[Step, ...] = (
    authorise,
    report,
    anchor,
    resolve,
    precheck,
    gate,
    lock,
    publish,
    run,
)
