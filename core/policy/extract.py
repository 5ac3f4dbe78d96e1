"""The policy of an ``AppConfig`` as plain JSON data: per environment (production and every
declared one, after merging) and app-wide.

Each governed key is one row of ``ENV_KEYS`` or ``APP_KEYS``: how to read it and how to
compare two values of it (core/policy/diff.py). Keys governed by their own admin grants
(domains, databases, links, image sources) are not read here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.appspec import DEFAULT_ENV, VOLUME_RE, AppConfig, AppSpec

# {"app": {key: value}, "environments": {env: {key: value}}}
Policy = dict[str, Any]


@dataclass(frozen=True)
class Key:
    """One governed key: ``read`` gives its JSON value, ``empty`` its value when absent,
    ``kind`` how a change of it is judged (core/policy/diff.py ``COMPARE``)."""

    name: str
    read: Callable[[Any], Any]
    kind: str
    empty: Any = None


def approval_of(spec: AppSpec) -> dict[str, Any] | None:
    if spec.approval is None:
        return None
    return {
        "required": spec.approval.required,
        "approvers": list(spec.approval.approvers),
        "expires": spec.approval.expires,
    }


def host_volumes(spec: AppSpec) -> list[str]:
    """Bind mounts as ``/host/path:mode``: which host folder, and whether it may be written."""
    out = set()
    for volume in spec.volumes:
        match = VOLUME_RE.match(volume)
        if match and match["source"].startswith("/"):
            out.add(f"{match['source']}:{match['mode'] or 'rw'}")
    return sorted(out)


def push_rules(config: AppConfig) -> list[str]:
    return sorted({f"{rule.branch} -> {rule.env}" for rule in config.base.deploy_on_push})


def previews_of(config: AppConfig) -> dict[str, Any] | None:
    previews = config.base.previews
    if previews is None:
        return None
    return {
        "domain": previews.domain,
        "https": previews.https,
        "replicas": previews.replicas,
        "forks": previews.forks,
        "env": sorted(previews.env),
    }


ENV_KEYS: tuple[Key, ...] = (
    Key("approval", approval_of, "approval"),
    Key("swarm_secrets", lambda spec: sorted({s.name for s in spec.swarm_secrets}), "set", []),
    Key("host_paths", host_volumes, "set", []),
)
APP_KEYS: tuple[Key, ...] = (
    Key("deploy_on_push", push_rules, "set", []),
    Key("previews", previews_of, "previews"),
)


def extract(config: AppConfig) -> Policy:
    envs = dict.fromkeys([DEFAULT_ENV, *config.environments])
    return {
        "app": {key.name: key.read(config) for key in APP_KEYS},
        "environments": {
            env: {key.name: key.read(config.for_env(env)) for key in ENV_KEYS} for env in envs
        },
    }


def nothing() -> Policy:
    """The policy an app has before an admin accepted one: nothing beyond the defaults."""
    return {"app": {key.name: key.empty for key in APP_KEYS}, "environments": {}}


def env_value(policy: Policy, env: str, name: str) -> Any:
    """``name`` of ``env`` in ``policy``; an environment it does not hold has the empty value."""
    key = next(k for k in ENV_KEYS if k.name == name)
    return policy["environments"].get(env, {}).get(name, key.empty)


def with_env(accepted: Policy, proposed: Policy, env: str) -> Policy:
    """``accepted`` with ``env``'s part taken from ``proposed`` (``policy accept --env``)."""
    environments = dict(accepted["environments"])
    if env in proposed["environments"]:
        environments[env] = proposed["environments"][env]
    else:
        environments.pop(env, None)
    return {"app": accepted["app"], "environments": environments}
