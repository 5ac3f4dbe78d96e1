"""What outside CI needs from the control plane: registry logins, CI tokens, and the image
deploy a token may trigger (through the same steps as a chat deploy: grant, approval gate,
lock, audit).

Logins and tokens are made from the host's CLI only, so a password or a token never goes
through a chat channel. A token is shown once; the store keeps a keyed digest of it.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from commands.dispatch import Dispatcher
from commands.grammar import parse
from commands.replies import ApprovalRequest, Reply
from commands.request import ChatRequest, describe
from core.deploy.registry import ANY_APP, RegistryError, check_login, parse_reference
from core.errors import CoreError
from core.names import APP_NAME_RE, ENV_NAME_RE, USER_RE
from core.pipelines import PipelineError as CorePipelineError
from core.pipelines.payload import load_json

TOKEN_PREFIX = "sbci"  # noqa: S105 (a marker in front of every token, not a secret)
CI_PLATFORM = "ci"
HOST_RE = APP_NAME_RE  # token names share the app name's shape


class PipelineError(Exception):
    """A login or token request that cannot be done; the message says what to change."""


@dataclass(frozen=True)
class CiCaller:
    """Whom a valid token speaks for: ``ci:NAME``, limited to ``app`` (``*``: every app)."""

    name: str
    app: str

    @property
    def user(self) -> str:
        return f"{CI_PLATFORM}:{self.name}"

    def covers(self, app: str) -> bool:
        return self.app in (ANY_APP, app)


def _known(bot: Dispatcher, app: str | None) -> None:
    if app is not None and bot.engine.store.get_app(app) is None:
        raise PipelineError(f"no app named {app}: `apps add {app} …` first")


def _registry_host(registry: str) -> str:
    return parse_reference(f"{registry}/probe").registry


def registry_login(
    bot: Dispatcher, *, registry: str, username: str, password: str, app: str | None, by: str
) -> str:
    """Store (or replace) a login to ``registry``: for ``app`` only, or for every app, once
    the registry accepted it."""
    owner = app or ANY_APP
    try:
        host = _registry_host(registry)
    except RegistryError as exc:
        raise PipelineError(f"{registry!r} is not a registry host such as ghcr.io") from exc
    _known(bot, app)
    if not username or not password:
        raise PipelineError("a registry login needs a user name and a password (or token)")
    plane, store, vault = bot.engine.plane, bot.engine.store, bot.engine.vault
    command = f"registry login {host} --user {username}" + (f" --app {app}" if app else "")
    try:
        check_login(plane.servers.connect(plane.server), username, password, host)
    except CoreError as exc:  # refused, unreachable, or the engine is down
        store.audit(
            user=by, channel="cli", app=app, command=command, result="failed", detail=str(exc)
        )
        raise PipelineError(str(exc)) from exc
    store.set_registry_login(
        app=owner, registry=host, username=username, secret=vault.encrypt(password), set_by=by
    )
    scope = f"app {app}" if app else "every app"
    store.audit(
        user=by,
        channel="cli",
        app=app,
        command=command,
        result="ok",
        detail=f"login to {host} for {scope}",
    )
    return f"{host}: {username} for {scope}"


def registry_logout(bot: Dispatcher, *, registry: str, app: str | None, by: str) -> bool:
    try:
        host = _registry_host(registry)
    except RegistryError as exc:
        raise PipelineError(f"{registry!r} is not a registry host such as ghcr.io") from exc
    removed = bot.engine.store.remove_registry_login(app or ANY_APP, host)
    bot.engine.store.audit(
        user=by,
        channel="cli",
        app=app,
        command=f"registry logout {host}" + (f" --app {app}" if app else ""),
        result="ok" if removed else "failed",
    )
    return removed


def _digest(bot: Dispatcher, token: str) -> str:
    return bot.engine.vault.digest(token.encode(), length=64)


def create_ci_token(
    bot: Dispatcher,
    *,
    name: str,
    app: str | None,
    by: str,
    all_apps: bool = False,
    owner: str | None = None,
) -> str:
    """A new token for ``ci:NAME``, with the deployer grant it needs on ``app`` (or, said
    explicitly with ``all_apps``, every app); returned once, never stored. ``owner`` (default:
    ``by``) is the person behind its deploys, who may never approve one of them."""
    if not HOST_RE.match(name):
        raise PipelineError(f"{name!r} is not a token name (a-z, 0-9 and '-')")
    if (app is None) == (not all_apps):
        raise PipelineError(
            "give --app APP for a token that deploys one app, or --all-apps for one that may "
            "deploy every app (not both)"
        )
    owner = owner or by
    if not USER_RE.match(owner):
        raise PipelineError(f"--owner {owner!r}: write platform:id, e.g. slack:U024BE7LH")
    _known(bot, app)
    token = f"{TOKEN_PREFIX}_{name}_{secrets.token_urlsafe(32)}"
    store, scope = bot.engine.store, app or ANY_APP
    if not store.add_ci_token(
        name=name, app=scope, token_hash=_digest(bot, token), created_by=by, owner=owner
    ):
        raise PipelineError(f"a CI token named {name} exists: revoke it first")
    caller = CiCaller(name, scope)
    store.add_grant(user=caller.user, role="deployer", app=scope, env="*", granted_by=by)
    store.audit(
        user=by,
        channel="cli",
        app=app,
        command=f"ci token create {name} " + (f"--app {app}" if app else "--all-apps"),
        result="ok",
        detail=f"{caller.user} may deploy {app or 'every app'}; owned by {owner}",
    )
    return token


def scope_of(row: dict[str, Any]) -> str:
    """A token's scope as ``ci token list`` shows it."""
    return "all-apps" if row["app"] == ANY_APP else f"app:{row['app']}"


def revoke_ci_token(bot: Dispatcher, *, name: str, by: str) -> bool:
    store = bot.engine.store
    row = store.ci_token(name)
    if row is None:
        return False
    store.remove_ci_token(name)
    caller = CiCaller(name, row["app"])
    store.remove_grant(user=caller.user, role="deployer", app=row["app"], env="*")
    store.audit(user=by, channel="cli", command=f"ci token revoke {name}", result="ok")
    return True


def ci_caller(bot: Dispatcher, token: str) -> CiCaller | None:
    """The caller a presented token belongs to, or None; digests compared in constant time."""
    prefix, _, rest = token.partition("_")
    name, _, secret = rest.partition("_")
    if prefix != TOKEN_PREFIX or not HOST_RE.match(name) or not secret:
        return None
    row = bot.engine.store.ci_token(name)
    expected = row["token_hash"] if row else "0" * 64
    if not hmac.compare_digest(expected, _digest(bot, token)) or row is None:
        return None
    bot.engine.store.touch_ci_token(name)
    return CiCaller(name, row["app"])


def ci_body(raw: bytes) -> Any:
    """A CI request's JSON, bounded in depth (a deep body is a 400, not a RecursionError)."""
    try:
        return load_json(raw or b"null")
    except CorePipelineError as exc:
        raise PipelineError(str(exc)) from exc


def deploy_request(caller: CiCaller, body: Any) -> ChatRequest:
    """The chat request a CI call stands for; every field checked before it becomes text."""
    if not isinstance(body, dict):
        raise PipelineError('send a JSON object: {"app": …, "env": …, "image": …}')
    app, env, image = body.get("app"), body.get("env"), body.get("image")
    if not isinstance(app, str) or not APP_NAME_RE.match(app):
        raise PipelineError("app: give the registered app's name")
    if env is None:
        raise PipelineError("env: required; name the environment, e.g. staging or production")
    if not isinstance(env, str) or not ENV_NAME_RE.match(env):
        raise PipelineError("env: give an environment name such as staging")
    if not isinstance(image, str):
        raise PipelineError("image: give the image CI pushed, by tag or by digest")
    try:
        reference = str(parse_reference(image))
    except RegistryError as exc:
        raise PipelineError(f"image: {exc}") from exc
    if not caller.covers(app):
        raise PermissionError(f"this token deploys {caller.app} only, not {app}")
    text = f"deploy {app} --env {env} --image {reference}"
    return ChatRequest(CI_PLATFORM, caller.user, f"{CI_PLATFORM}:{caller.name}", text)


def audit_refusal(bot: Dispatcher, user: str, detail: str, app: str | None = None) -> None:
    """A CI call turned away before dispatch (no token, a bad one, another app's)."""
    bot.engine.store.audit(
        user=user,
        channel=CI_PLATFORM,
        app=app,
        command="POST /ci/deploy",
        result="denied",
        detail=detail,
    )


async def ci_deploy(bot: Dispatcher, request: ChatRequest) -> list[Reply]:
    """Run the deploy as its CI caller; an approval it waits for is posted to the app's
    deploy channels, where approvers can click it (CI itself has no chat to show it in)."""
    replies = await bot.run(request)
    app, env = describe(parse(request.text))
    for reply in replies:
        if isinstance(reply, ApprovalRequest):
            await asyncio.to_thread(bot.notifier.publish, "deploys", app, env, reply)
    return replies
