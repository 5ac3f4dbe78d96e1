"""Each app's accepted policy (core/policy): shown, compared with a ref's, accepted by an
admin. A push that widens it is refused until then; an admin who does not accept it simply
leaves it refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from commands.catalog.context import Context
from commands.grammar import arg, command, option
from commands.permissions import ADMIN, VIEW
from commands.replies import DENIED, Failure, Message, Reply, Result, Table, when
from core.config.parts import DEFAULT_ENV
from core.policy.accept import accept, review
from core.policy.diff import Change, shown
from core.policy.extract import APP_KEYS, ENV_KEYS, Policy

MAX_TITLE = 1500


def lines_of(policy: Policy) -> tuple[tuple[str, str], ...]:
    rows = [(key.name, shown(policy["app"].get(key.name, key.empty))) for key in APP_KEYS]
    for env, values in policy["environments"].items():
        rows += [
            (f"environments.{env}.{key.name}", shown(values.get(key.name, key.empty)))
            for key in ENV_KEYS
        ]
    return tuple(rows)


def change_rows(changes: list[Change]) -> tuple[tuple[str, str, str, str], ...]:
    return tuple(
        (c.where, shown(c.before), shown(c.after), "widens" if c.widening else "narrows")
        for c in changes
    )


@command("policy", permission=VIEW, examples=("policy api",))
class PolicyShow:
    """Show an app's accepted policy: approvals, Swarm secrets and host paths per environment,
    push rules and previews; who accepted it, when, and at which commit."""

    app: str = arg("app", "APP")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        await asyncio.to_thread(ctx.engine.app, self.app)  # names the registered ones if not
        row = await ctx.engine.db.in_thread(lambda: ctx.engine.store.accepted_policy(self.app))
        if row is None:
            yield Message(
                f"{self.app} has no accepted policy, so its deploys are refused: an admin "
                f"runs `policy diff {self.app}` then `policy accept {self.app}`"
            )
            return
        commit = (row["commit_sha"] or "")[:12] or "its folder"
        title = (
            f"policy of {self.app}, accepted by {row['accepted_by']} "
            f"{when(row['accepted_at'])} at {commit}"
        )
        yield Table(("key", "accepted"), lines_of(row["policy"]), title=title)


@command("policy diff", permission=VIEW, examples=("policy diff api", "policy diff api feature"))
class PolicyDiff:
    """Compare an app's accepted policy with the one app.yml at REF proposes (the registered
    ref by default): each difference, and whether it widens (needs `policy accept`) or
    narrows (applies at once)."""

    app: str = arg("app", "APP")
    ref: str | None = arg("ref", "REF", optional=True)

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        reviewed = await review(ctx.engine.plane, self.app, self.ref)
        at = f"{self.ref or 'the registered ref'}" + (
            f" ({reviewed.commit[:12]})" if reviewed.commit else ""
        )
        if reviewed.held is None:
            yield Message(f"{self.app} has no accepted policy yet: everything below widens")
        if not reviewed.changes:
            yield Message(f"the policy of {self.app} at {at} is the accepted one")
            return
        yield Table(
            ("key", "accepted", f"at {at}", "change"),
            change_rows(reviewed.changes),
            title=f"policy of {self.app}: accepted against {at}",
        )


@command(
    "policy accept",
    permission=ADMIN,
    changes_state=True,
    examples=("policy accept api", "policy accept api v2 --env staging"),
)
class PolicyAccept:
    """Accept the policy app.yml at REF proposes (the registered ref by default) as the app's
    policy; with --env, only that environment's part. The difference goes into the audit
    and to the alerts channels. Not accepting is how an admin rejects a change."""

    app: str = arg("app", "APP")
    ref: str | None = arg("ref", "REF", optional=True)
    env: str | None = option("env", "ENV")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        if self.env is None and not ctx.policy.allows(ctx.user, ADMIN, self.app, None):
            # the whole policy covers every environment: so must the grant
            denial = ctx.policy.denial(ctx.user, ADMIN, self.app, None)
            yield Failure(f"{denial} (or accept one environment's part with --env)", DENIED)
            return
        plane = ctx.engine.plane
        reviewed = await review(plane, self.app, self.ref, self.env)
        await accept(plane, reviewed, self.env, ctx.user)
        at = (reviewed.commit or "")[:12] or "its folder"
        part = f" ({self.env})" if self.env else ""
        what = "; ".join(str(c) for c in reviewed.changes) or "no difference"
        title = f"accepted the policy of {self.app}{part} at {at}: {what}"
        if len(title) > MAX_TITLE:
            title = title[: MAX_TITLE - 1] + "…"
        notice = Message(f"🛡️ {ctx.user} {title}")
        notifier = ctx.publisher()
        await asyncio.to_thread(
            notifier.publish, "alerts", self.app, self.env or DEFAULT_ENV, notice
        )
        yield Result(True, title, (), {"app": self.app, "by": ctx.user})
