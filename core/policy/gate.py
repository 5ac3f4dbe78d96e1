"""Where app.yml is read for a deploy, a preview or a webhook: its policy may narrow what an
admin accepted, never widen it. A widening is refused with the differences and the commands
an admin runs to review and accept them."""

from __future__ import annotations

import asyncio
from typing import Any

from core.appspec import AppConfig, Approval
from core.errors import CoreError
from core.plane import Plane
from core.policy.diff import Change, app_wide, diff, widening
from core.policy.extract import Policy, env_value, extract

MAX_LISTED = 10


class PolicyError(CoreError):
    """app.yml asks for more than the app's accepted policy allows."""


def ref_words(ref: str | None) -> str:
    return f" {ref}" if ref else ""


def refusal(app: str, where: str, changes: list[Change], ref: str | None, env: str | None) -> str:
    listed = "\n".join(f"  • {c}" for c in changes[:MAX_LISTED])
    more = f"\n  … and {len(changes) - MAX_LISTED} more" if len(changes) > MAX_LISTED else ""
    scope = f" --env {env}" if env else ""
    return (
        f"{app}: {where} widens what an admin accepted for it, so nothing was changed:\n"
        f"{listed}{more}\n"
        f"An admin of {app} reviews it with `policy diff {app}{ref_words(ref)}` and accepts it "
        f"with `policy accept {app}{ref_words(ref)}{scope}`; until then it is refused."
    )


def never_accepted(app: str) -> PolicyError:
    return PolicyError(
        f"{app} has no accepted policy (it was registered before policies existed), so it is "
        f"treated as accepting nothing and nothing was changed: an admin of {app} reviews "
        f"app.yml's policy with `policy diff {app}` and accepts it with `policy accept {app}`"
    )


async def accepted(plane: Plane, app: str) -> Policy | None:
    row = await asyncio.to_thread(plane.store.accepted_policy, app)
    return row["policy"] if row else None


def _where(commit: str | None, ref: str | None) -> str:
    if commit:
        return f"app.yml at {commit[:12]}"
    return f"app.yml at {ref}" if ref else "app.yml"


async def check_env(
    plane: Plane, app: str, config: AppConfig, env: str, commit: str | None, ref: str | None
) -> None:
    """A deploy (or dry run) of ``env`` from ``config``: refused when its part widens."""
    held = await accepted(plane, app)
    if held is None:
        raise never_accepted(app)
    wider = widening(diff(held, extract(config), env))
    if wider:
        raise PolicyError(refusal(app, _where(commit, ref), wider, ref, env))


async def check_app(plane: Plane, app: str, config: AppConfig, key: str) -> None:
    """A webhook or a preview reads the app-wide ``key`` (deploy_on_push, previews) of the
    registered ref: refused when it widens what was accepted."""
    held = await accepted(plane, app)
    if held is None:
        raise never_accepted(app)
    wider = widening(app_wide(diff(held, extract(config)), key))
    if wider:
        raise PolicyError(refusal(app, "app.yml at the registered ref", wider, None, None))


def secrets_of(service_spec: dict[str, Any]) -> list[str]:
    container = service_spec.get("TaskTemplate", {}).get("ContainerSpec", {})
    return sorted({s["SecretName"] for s in container.get("Secrets") or []})


async def check_release(plane: Plane, app: str, env: str, number: int, spec: dict) -> None:
    """A rollback re-applies a release deployed under an earlier accepted policy: it may not
    bring back a Swarm secret an admin has since taken out of it."""
    held = await accepted(plane, app)
    allowed = set(env_value(held, env, "swarm_secrets")) if held is not None else set()
    extra = [name for name in secrets_of(spec) if name not in allowed]
    if extra:
        raise PolicyError(
            f"release {number} of {app} ({env}) mounts the Swarm secret(s) {', '.join(extra)}, "
            f"which {app}'s accepted policy for {env} no longer allows, so nothing was changed: "
            f"deploy a current release, or an admin accepts a policy naming them "
            f"(`policy accept {app} REF --env {env}`)"
        )


def _approval(value: dict[str, Any] | None) -> Approval | None:
    if value is None:
        return None
    return Approval(
        required=value["required"], approvers=value["approvers"], expires=f"{value['expires']}ns"
    )


def tighten(held: Approval | None, offered: Approval | None) -> Approval | None:
    """The stricter of two approvals, field by field: a push may add to an approval."""
    if held is None or offered is None:
        return held or offered
    common = [who for who in held.approvers if who in offered.approvers]
    return Approval(
        required=max(held.required, offered.required),
        approvers=common or held.approvers,
        expires=f"{min(held.expires, offered.expires)}ns",
    )


async def approval(plane: Plane, app: str, env: str, *offered: Approval | None) -> Approval | None:
    """What ``env`` asks for: the accepted approval, tightened by each app.yml read. An app
    with no accepted policy keeps the app.yml's own (its deploys are refused anyway)."""
    held = await accepted(plane, app)
    rule = _approval(env_value(held, env, "approval")) if held is not None else None
    for other in offered:
        rule = tighten(rule, other)
    return rule
