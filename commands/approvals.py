"""The whole life of an approval: asked for, decided, expired, and what it releases.

A request is bound to what was reviewed: the typed command, and for a deploy the resolved
commit and the digest of the spec it would run. When enough people approve, the deploy
runs exactly that, or is refused as changed. Which environments ask for approval comes from
the app's accepted policy, so a push cannot lift its own approval.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from commands import four_eyes
from commands.grammar import parse, render, spec_of
from commands.permissions import Policy
from commands.replies import (
    DENIED,
    ApprovalRequest,
    Failure,
    Message,
    Reply,
    Result,
    Step,
    encode,
    when,
)
from core.config.parts import Approval
from core.engine import Engine

if TYPE_CHECKING:
    from core.deploy.resolve import Resolved


@dataclass(frozen=True)
class Released:
    """An approved request, to run now as its requester."""

    request: Any
    row: dict[str, Any]
    approved_by: str
    secret: str | None
    resolved: Resolved | None


@dataclass(frozen=True)
class Review:
    """The approval a request that reads no app.yml (a database's) asks for: its rule, the
    digest of what it names (checked again through ``request.bound`` when approved) and
    what the approvers are shown."""

    rule: Approval
    digest: str
    details: tuple[str, ...] = ()


async def rule(engine: Engine, app: str, env: str, resolved: Resolved | None) -> Approval | None:
    """The approval an environment asks for: the accepted policy's (core/policy), which
    app.yml at the registered ref and the ref being deployed may tighten, never loosen."""
    from core.deploy.resolve import check_env  # app.yml's code loads for a command that has one
    from core.policy import gate as policy_gate

    config = await engine.config(app)
    check_env(config, env)
    offered = config.for_env(env).approval, resolved.spec.approval if resolved else None
    return await policy_gate.approval(engine.plane, app, env, *offered)


async def pinned(engine: Engine, request: Any, app: str, env: str) -> Any:
    """The request as it will be reviewed: a rollback names the release it goes back to,
    so approving it later cannot land on another one."""
    if "release" in {f.name for f in dataclasses.fields(request)} and request.release is None:
        chosen = await engine.rollback_target(app, env)
        return dataclasses.replace(request, release=chosen.number)
    return request


async def ask(
    engine: Engine,
    request: Any,
    *,
    user: str,
    channel: str,
    platform: str,
    app: str,
    env: str,
    approval: Approval,
    resolved: Resolved | None,
    secret: str | None,
    digest: str | None = None,
    details: tuple[str, ...] = (),
) -> ApprovalRequest:
    now = engine.clock.time()
    text = render(request)
    sealed = {"secret": engine.vault.encrypt(secret)} if secret is not None else {}
    row = {
        "app": app,
        "env": env,
        "command": text,
        "requester": user,
        "channel": channel,
        "platform": platform,
        "required": approval.required,
        "approvers": json.dumps(approval.approvers),
        "created_at": now,
        "expires_at": now + approval.expires / 1e9,
        "note": "",
        "commit_sha": resolved.commit if resolved else None,
        "digest": resolved.digest if resolved else digest,
        "request": json.dumps(sealed),
    }
    approval_id = await asyncio.to_thread(engine.store.add_approval, row)
    if resolved is not None:
        details = tuple(await engine.plan(resolved))
    return ApprovalRequest(
        id=approval_id,
        summary=f"{text} requested by {user}",
        requester=user,
        approvers=tuple(approval.approvers),
        required=approval.required,
        expires_at=row["expires_at"],
        details=details,
    )


def may_decide(policy: Policy, user: str, row: dict[str, Any]) -> bool:
    return any(
        user == who if ":" in who else policy.has_role(user, who, row["app"], row["env"])
        for who in json.loads(row["approvers"])
    )


def _already(row: dict[str, Any]) -> Failure:
    by = ", ".join(json.loads(row["approved_by"])) or "nobody"
    return Failure(
        f"request {row['id']} is already {row['status']} (approved by {by}); nothing to do"
    )


def requester_may(policy: Policy, row: dict[str, Any], request: Any) -> bool:
    return policy.allows(row["requester"], spec_of(request).permission, row["app"], row["env"])


async def approve(
    engine: Engine, policy: Policy, user: str, approval_id: int
) -> tuple[list[Reply], Released | None]:
    """Record ``user``'s approval; the request is released once enough people approved."""
    row = await asyncio.to_thread(engine.store.approval, approval_id)
    if row is None or (user != row["requester"] and not may_decide(policy, user, row)):
        # nothing about a request goes to someone who could not approve it
        return [Failure(f"you may not approve request {approval_id}", DENIED)], None
    if row["status"] != "pending":
        return [_already(row)], None
    if row["expires_at"] <= engine.clock.time():
        await asyncio.to_thread(
            engine.store.decide_approval, approval_id, "expired", "expired before approval"
        )
        return [
            Failure(f"request {approval_id} expired at {when(row['expires_at'])}; ask again")
        ], None
    if user == row["requester"]:
        return [
            Failure(f"you requested {approval_id} yourself; someone else must approve it", DENIED)
        ], None
    if (behind := await four_eyes.behind_it(engine, user, row)) is not None:
        return [behind], None
    approvers = json.loads(row["approved_by"])
    if user in approvers:
        return [Failure(f"you already approved {approval_id}; it needs someone else too")], None
    request = parse(row["command"])
    if not requester_may(policy, row, request):
        await asyncio.to_thread(
            engine.store.decide_approval, approval_id, "refused", "the requester lost the grant"
        )
        return [
            Failure(
                f"{row['requester']} may no longer run `{row['command']}`, so request "
                f"{approval_id} cannot run; nothing was changed",
                DENIED,
            )
        ], None
    approvers.append(user)
    status = "approved" if len(approvers) >= row["required"] else "pending"
    if not await asyncio.to_thread(engine.store.record_approval, approval_id, approvers, status):
        fresh = await asyncio.to_thread(engine.store.approval, approval_id)
        return [_already(fresh or row)], None
    if status == "pending":
        return [
            Message(f"approval {len(approvers)} of {row['required']} recorded for {approval_id}")
        ], None
    resolved = None
    if spec_of(request).resolves:
        image = getattr(request, "image", None)  # pinned again: a moved tag is a change
        ref = None if image else (row["commit_sha"] or request.ref)
        resolved = await engine.resolve(row["app"], row["env"], ref, image)
        if resolved.digest != row["digest"]:
            await asyncio.to_thread(
                engine.store.finish_approval, approval_id, "stale", "changed since requested"
            )
            return [
                Failure(
                    f"request {approval_id} changed since requested (digest {row['digest']}, "
                    f"now {resolved.digest}): request again; nothing was changed"
                )
            ], None
    bound = getattr(request, "bound", None)  # what a request that resolves nothing reviewed
    if bound is not None:
        now = await bound(engine)
        if now != row["digest"]:
            await asyncio.to_thread(
                engine.store.finish_approval, approval_id, "stale", "changed since requested"
            )
            return [
                Failure(
                    f"request {approval_id} changed since requested (what it names is not what "
                    "was reviewed): request again; nothing was changed"
                )
            ], None
    sealed = json.loads(row.get("request") or "{}")
    secret = engine.vault.decrypt(sealed["secret"]) if "secret" in sealed else None
    by = ", ".join(approvers)
    step = Step(f"{approval_id} approved by {by}: running `{row['command']}`")
    return [step], Released(request, row, by, secret, resolved)


async def reject(engine: Engine, policy: Policy, user: str, approval_id: int) -> Reply:
    row = await asyncio.to_thread(engine.store.approval, approval_id)
    if row is None or (user != row["requester"] and not may_decide(policy, user, row)):
        return Failure(f"you may not reject request {approval_id}", DENIED)
    if not await asyncio.to_thread(
        engine.store.decide_approval, approval_id, "rejected", f"by {user}"
    ):
        return _already(await asyncio.to_thread(engine.store.approval, approval_id) or row)
    return Result(True, f"request {approval_id} ({row['command']}) rejected by {user}")


def finish(engine: Engine, released: Released, ok: bool) -> None:
    status = "executed" if ok else "failed"
    engine.store.finish_approval(released.row["id"], status, f"approved by {released.approved_by}")


def expire_due(engine: Engine) -> list[tuple[str, str, Reply]]:
    """Pending requests past their time become expired: (platform, channel, message)."""
    out = []
    for row in engine.store.due_approvals(engine.clock.time()):
        if not engine.store.decide_approval(row["id"], "expired", "nobody approved in time"):
            continue
        engine.store.audit(
            user="shipbot",
            channel=row["channel"],
            command=row["command"],
            app=row["app"],
            env=row["env"],
            result="expired",
            detail=f"approval {row['id']} requested by {row['requester']}",
        )
        message = Message(
            f"request {row['id']} (`{row['command']}` by {row['requester']}) "
            "expired without approval; nothing was changed"
        )
        if row["platform"] not in ("console", "webhook"):  # neither has a chat to post to
            engine.store.enqueue(
                platform=row["platform"],
                channel=row["channel"],
                kind="deploys",
                payload=encode(message),
            )
        out.append((row["platform"], row["channel"], message))
    return out
