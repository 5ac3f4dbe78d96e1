"""Every chat command: its arguments, permission, help and what it does, in one place."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from commands.grammar import REGISTRY, UsageError, arg, command, flag, option
from commands.permissions import ADMIN, DEPLOY, PUBLIC, VIEW, Policy
from commands.replies import DENIED, Failure, Log, Message, Reply, Result, Step, Table
from core.appspec import DEFAULT_ENV
from core.engine import Engine
from core.events import Event, LogLine, Outcome, Progress
from core.secrets import MASK, MIN_SECRET_LENGTH


@dataclass(frozen=True)
class Context:
    engine: Engine
    user: str
    channel: str
    platform: str
    policy: Policy
    secret: str | None = None  # a value given outside the channel (prompt, modal)
    approved_by: str | None = None
    # runs an approved request's text as its requester (set by the dispatcher)
    run_approved: Callable[[dict[str, Any], str], AsyncIterator[Reply]] | None = None


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%m-%d %H:%M:%S")


async def _relay(events: AsyncIterator[Event]) -> AsyncIterator[Reply]:
    async for event in events:
        if isinstance(event, Progress):
            yield Step(event.text)
        elif isinstance(event, LogLine):
            yield Log(event.text)
        elif isinstance(event, Outcome):
            yield Result(
                event.ok,
                event.title,
                tuple(event.details),
                dict(event.fields),
                tuple(event.log_tail),
            )


@command(
    "apps add",
    permission=ADMIN,
    changes_state=True,
    examples=(
        "apps add hello --path examples/hello",
        "apps add api --git https://git.example.com/team/api.git --ref main",
    ),
)
class AppsAdd:
    """Register an app from a folder or a git repository holding its app.yml.

    Give exactly one of --path (a folder on the control-plane host) or --git (a URL that
    is cloned; --ref picks the branch, tag or commit, later deploys may name another).
    """

    name: str = arg("app", "NAME")
    path: str | None = option("text", "DIR")
    git: str | None = option("text", "URL")
    ref: str | None = option("ref", "REF")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        if (self.path is None) == (self.git is None):
            raise UsageError("apps add: give exactly one of --path or --git", self.spec.usage)
        if self.ref is not None and self.git is None:
            raise UsageError("apps add: --ref goes with --git", self.spec.usage)
        if self.git:
            yield Step(f"cloning {self.git}")
        app, config = await ctx.engine.add_app(
            self.name, user=ctx.user, path=self.path, git=self.git, ref=self.ref
        )
        envs = ", ".join(["production", *config.environments])
        yield Result(
            True,
            f"registered {app.name}",
            (f"environments: {envs}",),
            {"source": app.source, "kind": app.source_kind},
        )


@command("apps list", permission=VIEW, examples=("apps list",))
class AppsList:
    """List the registered apps and where they come from."""

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        apps = [a for a in ctx.engine.store.list_apps() if ctx.policy.sees(ctx.user, VIEW, a.name)]
        if not apps:
            yield Message("no apps yet: register one with `apps add NAME --path DIR`")
            return
        rows = tuple((a.name, a.source_kind, a.source, a.ref or "", a.created_by) for a in apps)
        yield Table(("app", "kind", "source", "ref", "added by"), rows)


@command(
    "deploy",
    permission=DEPLOY,
    locks=True,
    approvable=True,
    examples=(
        "deploy hello",
        "deploy hello --env staging",
        "deploy api v1.4.2 --env production",
        "deploy hello --dry-run",
    ),
)
class Deploy:
    """Build (or pull) and roll out an app; a failed health check rolls it back.

    REF is a branch, tag or commit for git apps, or the image tag for image apps.
    --dry-run shows what would change (image, replicas, env keys, labels) and changes nothing.
    """

    app: str = arg("app", "APP")
    ref: str | None = arg("ref", "REF", optional=True)
    env: str | None = option("env", "ENV")
    dry_run: bool = flag()

    @property
    def changes(self) -> bool:
        return not self.dry_run

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        if self.dry_run:
            lines = await ctx.engine.plan(self.app, env=self.env, ref=self.ref)
            yield Message(
                f"dry run of deploy {self.app} ({self.env or DEFAULT_ENV}): "
                + lines[0]
                + "\n"
                + "\n".join(f"  {line}" for line in lines[1:])
            )
            return
        async for reply in _relay(
            ctx.engine.deploy(
                self.app, user=ctx.user, env=self.env, ref=self.ref, approved_by=ctx.approved_by
            )
        ):
            yield reply


@command(
    "rollback",
    permission=DEPLOY,
    locks=True,
    approvable=True,
    examples=("rollback hello", "rollback hello 3", "rollback hello --env staging"),
)
class Rollback:
    """Go back to an earlier release (the one before the live one by default)."""

    app: str = arg("app", "APP")
    release: int | None = arg("release", "RELEASE", optional=True)
    env: str | None = option("env", "ENV")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        async for reply in _relay(
            ctx.engine.rollback(
                self.app,
                user=ctx.user,
                env=self.env,
                number=self.release,
                approved_by=ctx.approved_by,
            )
        ):
            yield reply


@command("releases", permission=VIEW, examples=("releases hello",))
class Releases:
    """List an app's last releases: number, status, who deployed it and when."""

    app: str = arg("app", "APP")
    env: str | None = option("env", "ENV")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        releases = ctx.engine.releases(self.app, self.env)
        if not releases:
            yield Message(f"{self.app} has no releases yet: `deploy {self.app}`")
            return
        rows = tuple(
            (
                str(r.number),
                r.status,
                r.deployed_by,
                _when(r.created_at),
                (r.source_ref or "")[:12],
                (r.message or "")[:60],
            )
            for r in releases
        )
        yield Table(
            ("release", "status", "by", "when", "ref", "note"),
            rows,
            title=f"{self.app} ({releases[0].env})",
        )


@command("status", permission=VIEW, examples=("status", "status hello"))
class Status:
    """Show what runs: release, healthy tasks and update state, per app and environment."""

    app: str | None = arg("app", "APP", optional=True)

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        services = [
            s
            for s in await ctx.engine.status(self.app)
            if ctx.policy.allows(ctx.user, VIEW, s.app, s.env)
        ]
        if not services:
            yield Message(
                "nothing is deployed yet"
                if self.app is None
                else f"{self.app} is not deployed yet: `deploy {self.app}`"
            )
            return
        rows = tuple(
            (
                s.app,
                s.env,
                s.release,
                f"{s.running}/{s.desired} {'healthy' if s.healthchecked else 'running'}",
                s.update_state or "",
            )
            for s in services
        )
        yield Table(("app", "env", "release", "tasks", "update"), rows)


@command("logs", permission=VIEW, examples=("logs hello", "logs hello --tail 200"))
class Logs:
    """Show the last lines the app's containers logged."""

    app: str = arg("app", "APP")
    env: str | None = option("env", "ENV")
    tail: int = option("count", "N", default=50)

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        if not 1 <= self.tail <= 5000:
            raise UsageError("logs: --tail must be between 1 and 5000", self.spec.usage)
        lines = await ctx.engine.logs(self.app, env=self.env, tail=self.tail)
        if not lines:
            yield Message(f"{self.app} has logged nothing yet")
        for line in lines:
            yield Log(line)


@command("scale", permission=DEPLOY, locks=True, examples=("scale hello 3",))
class Scale:
    """Set the number of replicas of an app until its next deploy."""

    app: str = arg("app", "APP")
    replicas: int = arg("count", "N")
    env: str | None = option("env", "ENV")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        async for reply in _relay(
            ctx.engine.scale(self.app, self.replicas, user=ctx.user, env=self.env)
        ):
            yield reply


@command("restart", permission=DEPLOY, locks=True, examples=("restart hello",))
class Restart:
    """Replace every task of an app, one at a time, new one first."""

    app: str = arg("app", "APP")
    env: str | None = option("env", "ENV")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        async for reply in _relay(ctx.engine.restart(self.app, user=ctx.user, env=self.env)):
            yield reply


@command("help", permission=PUBLIC, examples=("help", "help deploy", "help apps add"))
class Help:
    """Show the commands, or the usage and examples of one."""

    topic: str | None = arg("text", "COMMAND", optional=True)
    sub: str | None = arg("text", "SUBCOMMAND", optional=True)

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        if self.topic is None:
            rows = tuple(
                (spec.usage, spec.summary)
                for spec in REGISTRY.values()
                if ctx.policy.may_ever(ctx.user, spec.permission)
            )
            yield Table(("command", "what it does"), rows, title="shipbot commands")
            return
        name = " ".join(part for part in (self.topic, self.sub) if part)
        spec = REGISTRY.get(name)
        if spec is None:
            raise UsageError(f"help: no command {name!r}: type `help` for the list")
        lines = [f"usage: {spec.usage}", "", spec.help]
        if spec.examples:
            lines += ["", "examples:", *(f"  {example}" for example in spec.examples)]
        yield Message("\n".join(lines))


@command("whoami", permission=PUBLIC, examples=("whoami",))
class Whoami:
    """Show your platform id and what you may do."""

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        grants = ctx.policy.of(ctx.user)
        if not grants:
            who = (
                f"An admin can run `grant {ctx.user} viewer`."
                if ctx.policy.admins
                else f"No admin is configured yet: add `admins: [{ctx.user}]` to shipbot.yml "
                "in $SHIPBOT_HOME to make yourself one."
            )
            yield Message(
                f"you are {ctx.user}; you have no grants yet, so you may run only `help` and "
                f"`whoami`. {who}"
            )
            return
        admin = " (bootstrap admin from shipbot.yml)" if ctx.user in ctx.policy.admins else ""
        yield Message(f"you are {ctx.user}{admin}")
        yield Table(("role", "apps", "environments"), tuple((g.role, g.app, g.env) for g in grants))


@dataclass(frozen=True)
class _GrantFields:
    """A grant: who, which role, on which apps and environments (patterns with * and ?)."""

    user: str = arg("user", "USER")
    role: str = arg("role", "ROLE")
    app: str = option("pattern", "APP", default="*")
    env: str = option("pattern", "ENV", default="*")


@command(
    "grant",
    permission=ADMIN,
    changes_state=True,
    examples=("grant slack:U024BE7LH deployer --app api --env staging", "grant console:bob viewer"),
)
class GrantRole(_GrantFields):
    """Give a user a role on apps and environments (patterns with * and ?; default all).

    Roles: viewer (status, logs, releases), deployer (also deploy, rollback, scale,
    restart), admin (everything, including grants and registering apps).
    """

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        added = ctx.engine.store.add_grant(
            user=self.user, role=self.role, app=self.app, env=self.env, granted_by=ctx.user
        )
        what = f"{self.user} is {self.role} on {self.app}/{self.env}"
        yield Result(True, what if added else f"{what} already: nothing changed")


@command(
    "revoke",
    permission=ADMIN,
    changes_state=True,
    examples=("revoke slack:U024BE7LH deployer --app api --env staging",),
)
class RevokeRole(_GrantFields):
    """Take back a grant given with the same user, role, --app and --env."""

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        if not ctx.engine.store.remove_grant(
            user=self.user, role=self.role, app=self.app, env=self.env
        ):
            yield Failure(
                f"{self.user} has no {self.role} grant on {self.app}/{self.env}: see `grants "
                f"{self.user}`"
            )
            return
        yield Result(True, f"{self.user} is no longer {self.role} on {self.app}/{self.env}")


@command("grants", permission=ADMIN, examples=("grants", "grants console:bob"))
class Grants:
    """List the grants, of everyone or of one user."""

    user: str | None = arg("user", "USER", optional=True)

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        rows = [
            (admin, "admin", "*", "*", "shipbot.yml")
            for admin in sorted(ctx.policy.admins)
            if self.user in (None, admin)
        ]
        rows += [
            (g["user"], g["role"], g["app"], g["env"], g["granted_by"])
            for g in ctx.engine.store.grants(self.user)
        ]
        if not rows:
            yield Message("no grants" + (f" for {self.user}" if self.user else ""))
            return
        yield Table(("user", "role", "apps", "environments", "granted by"), tuple(rows))


def _approval_row(ctx: Context, approval_id: int) -> dict[str, Any]:
    row = ctx.engine.store.approval(approval_id)
    if row is None:
        raise UsageError(f"there is no approval request {approval_id}")
    return row


def _may_approve(ctx: Context, row: dict[str, Any]) -> bool:
    return any(
        ctx.user == who
        if ":" in who
        else ctx.policy.has_role(ctx.user, who, row["app"], row["env"])
        for who in json.loads(row["approvers"])
    )


def _already(row: dict[str, Any]) -> Failure:
    by = ", ".join(json.loads(row["approved_by"])) or "nobody"
    return Failure(
        f"request {row['id']} is already {row['status']} (approved by {by}); nothing to do"
    )


@command("approve", permission=PUBLIC, changes_state=True, examples=("approve 17",))
class Approve:
    """Approve a pending deploy or rollback; it runs once enough people approved."""

    id: int = arg("count", "ID")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        row = _approval_row(ctx, self.id)
        if row["status"] != "pending":
            yield _already(row)
            return
        if row["expires_at"] <= time.time():
            ctx.engine.store.decide_approval(self.id, "expired", "expired before approval")
            yield Failure(f"request {self.id} expired at {_when(row['expires_at'])}; ask again")
            return
        if ctx.user == row["requester"]:
            yield Failure(f"you requested {self.id} yourself; someone else must approve it", DENIED)
            return
        if not _may_approve(ctx, row):
            who = ", ".join(json.loads(row["approvers"]))
            yield Failure(
                f"{ctx.user} may not approve {row['app']}/{row['env']}: approvers are {who}",
                DENIED,
            )
            return
        approvers = json.loads(row["approved_by"])
        if ctx.user in approvers:
            yield Failure(f"you already approved {self.id}; it needs someone else too")
            return
        approvers.append(ctx.user)
        status = "approved" if len(approvers) >= row["required"] else "pending"
        if not ctx.engine.store.record_approval(self.id, approvers, status):
            yield _already(_approval_row(ctx, self.id))
            return
        if status == "pending":
            yield Message(f"approval {len(approvers)} of {row['required']} recorded for {self.id}")
            return
        yield Step(f"{self.id} approved by {', '.join(approvers)}: running `{row['command']}`")
        assert ctx.run_approved is not None
        async for reply in ctx.run_approved(row, ", ".join(approvers)):
            yield reply


@command("reject", permission=PUBLIC, changes_state=True, examples=("reject 17",))
class Reject:
    """Turn down a pending deploy or rollback (the requester may withdraw it too)."""

    id: int = arg("count", "ID")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        row = _approval_row(ctx, self.id)
        if ctx.user != row["requester"] and not _may_approve(ctx, row):
            yield Failure(f"{ctx.user} may not reject {row['app']}/{row['env']}", DENIED)
            return
        if not ctx.engine.store.decide_approval(self.id, "rejected", f"by {ctx.user}"):
            yield _already(_approval_row(ctx, self.id))
            return
        yield Result(True, f"request {self.id} ({row['command']}) rejected by {ctx.user}")


@command("unlock", permission=ADMIN, changes_state=True, examples=("unlock api --env production",))
class Unlock:
    """Clear the deploy lock of an app/env whose process died (it expires by itself too)."""

    app: str = arg("app", "APP")
    env: str | None = option("env", "ENV")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        key = f"{self.app}/{self.env or DEFAULT_ENV}"
        held = ctx.engine.store.force_unlock(key)
        if held is None:
            yield Message(f"{key} was not locked")
            return
        yield Result(True, f"{key} unlocked (was held by {held['owner']} for {held['what']})")


@command("audit", permission=ADMIN, examples=("audit", "audit hello --limit 50"))
class Audit:
    """Show who did what, where and when, with the result; denials included."""

    app: str | None = arg("app", "APP", optional=True)
    limit: int = option("count", "N", default=20)

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        rows = ctx.engine.store.audit_log(self.app, limit=max(1, min(self.limit, 500)))
        if not rows:
            yield Message("the audit log is empty" + (f" for {self.app}" if self.app else ""))
            return
        yield Table(
            ("when", "who", "where", "command", "result", "detail"),
            tuple(
                (
                    _when(r["ts"]),
                    r["user"],
                    r["channel"],
                    r["command"],
                    r["result"],
                    (r["detail"] or "")[:80],
                )
                for r in rows
            ),
        )


@command(
    "env set",
    permission=DEPLOY,
    changes_state=True,
    examples=("env set hello GREETING=hey", "env set hello LOG_LEVEL=debug --env staging"),
)
class EnvSet:
    """Set an environment variable of an app; the next deploy passes it to the containers."""

    app: str = arg("app", "APP")
    assignment: tuple[str, str] = arg("assignment", "KEY=VALUE")
    env: str | None = option("env", "ENV")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        ctx.engine.app(self.app)
        key, value = self.assignment
        ctx.engine.store.set_variable(
            app=self.app,
            env=self.env or DEFAULT_ENV,
            key=key,
            value=value,
            secret=False,
            updated_by=ctx.user,
        )
        yield Result(
            True,
            f"{key} set for {self.app} ({self.env or DEFAULT_ENV}); `deploy {self.app}` to apply",
        )


@command("env unset", permission=DEPLOY, changes_state=True, examples=("env unset hello GREETING",))
class EnvUnset:
    """Remove a variable or secret set from chat (app.yml's own env stays)."""

    app: str = arg("app", "APP")
    key: str = arg("key", "KEY")
    env: str | None = option("env", "ENV")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        ctx.engine.app(self.app)
        env = self.env or DEFAULT_ENV
        if not ctx.engine.store.unset_variable(app=self.app, env=env, key=self.key):
            yield Failure(f"{self.key} is not set from chat for {self.app} ({env})")
            return
        yield Result(
            True, f"{self.key} removed from {self.app} ({env}); `deploy {self.app}` to apply"
        )


@command("env list", permission=VIEW, examples=("env list hello",))
class EnvList:
    """Show an app's variables: from app.yml, set from chat, and secrets (masked)."""

    app: str = arg("app", "APP")
    env: str | None = option("env", "ENV")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        env = self.env or DEFAULT_ENV
        config, _ = await ctx.engine.config(ctx.engine.app(self.app))
        rows = {key: (key, value, "app.yml") for key, value in config.for_env(env).env.items()}
        for row in ctx.engine.store.variables(self.app, env):
            shown, source = (MASK, "secret") if row["secret"] else (row["value"], "chat")
            rows[row["key"]] = (row["key"], shown, f"{source} ({row['updated_by']})")
        if not rows:
            yield Message(f"{self.app} ({env}) has no variables")
            return
        yield Table(
            ("key", "value", "from"),
            tuple(rows[k] for k in sorted(rows)),
            title=f"{self.app} ({env})",
        )


@command(
    "secret set", permission=DEPLOY, changes_state=True, examples=("secret set hello API_TOKEN",)
)
class SecretSet:
    """Store a secret for an app, encrypted; its value is never typed into the channel.

    The console asks for the value without echo; Slack and Discord open a form.
    """

    app: str = arg("app", "APP")
    key: str = arg("key", "KEY")
    env: str | None = option("env", "ENV")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        ctx.engine.app(self.app)
        if ctx.secret is None:
            yield Failure(
                "secret set needs the value from a prompt or form, not the channel: "
                "use the console or your chat's form"
            )
            return
        if len(ctx.secret) < MIN_SECRET_LENGTH:
            yield Failure(
                f"a secret must be at least {MIN_SECRET_LENGTH} characters, so it "
                "can be masked wherever it would show"
            )
            return
        env = self.env or DEFAULT_ENV
        ctx.engine.store.set_variable(
            app=self.app,
            env=env,
            key=self.key,
            value=ctx.engine.vault.encrypt(ctx.secret),
            secret=True,
            updated_by=ctx.user,
        )
        yield Result(
            True,
            f"secret {self.key} stored for {self.app} ({env}), encrypted; "
            f"`deploy {self.app}` to apply",
        )


def describe(request: Any) -> tuple[str | None, str | None]:
    """The app and environment a request is about: for permissions, locks and the audit log.

    A command with an --env option that was not given acts on the default environment.
    """
    app = getattr(request, "app", None) or getattr(request, "name", None)
    if not hasattr(request, "env"):
        return app, None
    return app, request.env or DEFAULT_ENV
