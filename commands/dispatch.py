"""One path for every platform: text in, parsed, authorized, approved, locked, run, audited,
masked, replies out."""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from commands import catalog, locks
from commands.grammar import UsageError, parse, render, spec_of
from commands.notify import Notifier
from commands.permissions import VIEW, Grant, Policy
from commands.replies import (
    DENIED,
    FAILED,
    INTERNAL,
    USAGE,
    ApprovalRequest,
    Failure,
    Message,
    Reply,
    Result,
    encode,
)
from core.config import ControlConfig, load_config
from core.engine import Engine
from core.errors import BuildError, CoreError
from core.secrets import Masker, Vault
from core.store import Store, shipbot_home

log = logging.getLogger("shipbot.commands")


class StartError(Exception):
    """The control plane cannot open its config, store or key; the message says which."""


@dataclass(frozen=True)
class ChatRequest:
    """A message from any chat: who (immutable platform id), where, and what they typed.

    ``secret`` carries a value entered outside the channel (a prompt or a modal).
    """

    platform: str
    user: str
    channel: str
    text: str
    secret: str | None = None

    @property
    def identity(self) -> str:
        return self.user if ":" in self.user else f"{self.platform}:{self.user}"


def needs_secret(text: str) -> str | None:
    """The prompt to show when the text asks for a value that must not go into the channel."""
    try:
        request = parse(text)
    except UsageError:
        return None
    if isinstance(request, catalog.SecretSet):
        return f"value of {request.key} for {request.app} (not echoed): "
    return None


def mask(reply: Reply, masker: Masker) -> Reply:
    """The same reply with every secret value in its text replaced."""

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return masker(value)
        if isinstance(value, tuple):
            return tuple(clean(item) for item in value)
        if isinstance(value, dict):
            return {key: clean(item) for key, item in value.items()}
        return value

    changes = {f.name: clean(getattr(reply, f.name)) for f in dataclasses.fields(reply)}
    return dataclasses.replace(reply, **changes)


class Dispatcher:
    def __init__(self, engine: Engine, config: ControlConfig | None = None) -> None:
        self.engine = engine
        self.config = config or ControlConfig()
        self.notifier = Notifier(engine.store, list(self.config.notify))

    @classmethod
    def open(cls, home: Path | None = None) -> Dispatcher:
        """The control plane on this host: config and store under ``home``, the local engine."""
        try:
            home = home or shipbot_home()
            config = load_config(home)
            store = Store(home / "shipbot.db")
            engine = Engine(store, home=home, vault=Vault.open(home, config.secret_key))
        except (CoreError, OSError, sqlite3.Error, ValueError) as exc:
            raise StartError(f"shipbot cannot start: {exc}") from exc
        dispatcher = cls(engine, config)
        dispatcher.reconcile()
        return dispatcher

    def reconcile(self) -> list[Message]:
        """Deployments left running by a process that died are marked interrupted and
        reported to the alert channels; Swarm itself kept serving whatever it ran."""
        notices = []
        for row in self.engine.reconcile():
            notice = Message(
                f"{row['kind']} of {row['app']} ({row['env']}) by {row['started_by']} was "
                "interrupted: the shipbot process running it stopped. Check `status "
                f"{row['app']}` and deploy again if needed."
            )
            self.notifier.publish("alerts", row["app"], row["env"], notice)
            notices.append(notice)
        return notices

    def policy(self) -> Policy:
        grants = [
            Grant(g["user"], g["role"], g["app"], g["env"]) for g in self.engine.store.grants()
        ]
        return Policy(self.config.admins, grants)

    async def handle(self, request: ChatRequest) -> AsyncIterator[Reply]:
        masker = Masker([*self.engine.secret_values(), *filter(None, [request.secret])])
        async for reply in self._handle(request, masker):
            yield mask(reply, masker)

    async def _handle(self, request: ChatRequest, masker: Masker) -> AsyncIterator[Reply]:
        try:
            parsed = parse(request.text)
        except UsageError as exc:
            yield Failure(str(exc), USAGE, exc.usage)
            return
        spec = spec_of(parsed)
        user = request.identity
        app, env = catalog.describe(parsed)
        policy = self.policy()
        audit = dict(user=user, channel=request.channel, command=request.text, app=app, env=env)
        # Reading commands that name no environment (status APP) or no app at all (status,
        # apps list) need the view role somewhere in scope, and show only what it covers.
        if spec.permission == VIEW and app is None:
            allowed = policy.may_ever(user, VIEW)
        elif spec.permission == VIEW and env is None:
            allowed = policy.sees(user, VIEW, app)
        else:
            allowed = policy.allows(user, spec.permission, app, env)
        if not allowed:
            message = policy.denial(user, spec.permission, app, env)
            self.engine.store.audit(**audit, result="denied", detail=masker(message))
            yield Failure(message, DENIED)
            return
        changes = spec.changes_state and getattr(parsed, "changes", True)
        ctx = catalog.Context(
            self.engine,
            user,
            request.channel,
            request.platform,
            policy,
            request.secret,
            run_approved=self._run_approved,
        )
        outcome, detail = "ok", ""
        try:
            if spec.approvable and changes:
                approval = await self._approval_needed(parsed, ctx, app, env)
                if approval is not None:
                    outcome, detail = "pending", f"approval {approval.id}"
                    yield approval
                    return
            async for reply in self._run(parsed, ctx, app, env, locked=spec.locks and changes):
                if isinstance(reply, Result):
                    outcome, detail = ("ok" if reply.ok else "failed"), reply.title
                elif isinstance(reply, Failure):
                    outcome, detail = reply.kind, reply.message
                yield reply
        except UsageError as exc:
            outcome, detail = USAGE, str(exc)
            yield Failure(str(exc), USAGE, exc.usage or spec.usage)
        except BuildError as exc:
            outcome, detail = FAILED, str(exc)
            yield Failure(str(exc), FAILED, log_tail=tuple(exc.log_tail))
        except CoreError as exc:
            outcome, detail = FAILED, str(exc)
            yield Failure(str(exc), FAILED)
        except Exception:
            log.exception("command %r from %s failed", request.text, user)
            outcome, detail = "error", "internal error"
            yield Failure(
                "shipbot hit an internal error running this command; the details are in its "
                "log. Check `status` before trying again.",
                INTERNAL,
            )
        finally:
            if changes:
                self.engine.store.audit(**audit, result=outcome, detail=masker(detail)[:500])

    async def _run(
        self, parsed: Any, ctx: catalog.Context, app: str | None, env: str | None, locked: bool
    ) -> AsyncIterator[Reply]:
        if not locked:
            async for reply in parsed.run(ctx):
                yield reply
            return
        assert app is not None and env is not None
        what = ctx.approved_by and f"{ctx.user}, approved by {ctx.approved_by}" or ctx.user
        async with locks.hold(
            self.engine.store, app, env, ctx.user, f"`{render(parsed)}` for {what}"
        ):
            async for reply in parsed.run(ctx):
                if isinstance(reply, Result):  # a change's result also goes to its channels
                    masker = Masker(self.engine.secret_values())
                    self.notifier.publish(
                        "deploys", app, env, mask(reply, masker), skip=(ctx.platform, ctx.channel)
                    )
                yield reply

    async def _approval_needed(
        self, parsed: Any, ctx: catalog.Context, app: str | None, env: str | None
    ) -> ApprovalRequest | None:
        assert app is not None and env is not None
        config, _ = await self.engine.config(self.engine.app(app))
        self.engine.check_env(config, env)
        rule = config.for_env(env).approval
        if rule is None:
            return None
        now = time.time()
        text = render(parsed)
        approval_id = self.engine.store.add_approval(
            {
                "app": app,
                "env": env,
                "command": text,
                "requester": ctx.user,
                "channel": ctx.channel,
                "platform": ctx.platform,
                "required": rule.required,
                "approvers": json.dumps(rule.approvers),
                "created_at": now,
                "expires_at": now + rule.expires / 1e9,
                "note": "",
            }
        )
        details: tuple[str, ...] = ()
        if isinstance(parsed, catalog.Deploy):
            details = tuple(await self.engine.plan(app, env=env, ref=parsed.ref))
        return ApprovalRequest(
            id=approval_id,
            summary=f"{text} requested by {ctx.user}",
            requester=ctx.user,
            approvers=tuple(rule.approvers),
            required=rule.required,
            expires_at=now + rule.expires / 1e9,
            details=details,
        )

    async def _run_approved(self, row: dict[str, Any], approved_by: str) -> AsyncIterator[Reply]:
        """Run an approved request as its requester, once."""
        parsed = parse(row["command"])
        ctx = catalog.Context(
            self.engine,
            row["requester"],
            row["channel"],
            row["platform"],
            self.policy(),
            approved_by=approved_by,
        )
        status = "failed"
        try:
            async for reply in self._run(parsed, ctx, row["app"], row["env"], locked=True):
                if isinstance(reply, Result):
                    status = "executed" if reply.ok else "failed"
                yield reply
        finally:
            self.engine.store.finish_approval(row["id"], status, f"approved by {approved_by}")

    def expire_due(self) -> list[tuple[str, str, Reply]]:
        """Pending requests past their time become expired: (platform, channel, message)."""
        out = []
        for row in self.engine.store.due_approvals(time.time()):
            if self.engine.store.decide_approval(row["id"], "expired", "nobody approved in time"):
                self.engine.store.audit(
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
                if row["platform"] != "console":
                    self.engine.store.enqueue(
                        platform=row["platform"],
                        channel=row["channel"],
                        kind="deploys",
                        payload=encode(message),
                    )
                out.append((row["platform"], row["channel"], message))
        return out

    async def run(self, request: ChatRequest) -> list[Reply]:
        return [reply async for reply in self.handle(request)]

    def close(self) -> None:
        self.engine.close()
