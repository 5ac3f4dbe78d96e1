"""An admin's word on a policy: what a ref proposes against what was accepted, and
accepting it (the whole of it, or one environment's part)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from core.apps import get_app, read_config
from core.appspec import AppConfig
from core.errors import CoreError
from core.plane import Plane
from core.policy.diff import Change, diff
from core.policy.extract import Policy, extract, nothing, with_env


@dataclass(frozen=True)
class Review:
    app: str
    commit: str | None  # where the proposed policy was read (git apps)
    held: Policy | None  # None: no admin accepted one yet
    proposed: Policy
    changes: list[Change]


async def review(plane: Plane, name: str, ref: str | None, env: str | None = None) -> Review:
    app = await asyncio.to_thread(get_app, plane.store, name)
    config, commit = await read_config(plane, app, ref)
    row = await asyncio.to_thread(plane.store.accepted_policy, name)
    held = row["policy"] if row else None
    proposed = extract(config)
    if env is not None and env not in proposed["environments"]:
        declared = ", ".join(proposed["environments"])
        raise CoreError(f"{name} has no environment {env!r}: app.yml declares {declared}")
    changes = diff(held or nothing(), proposed, env)
    return Review(name, commit, held, proposed, changes)


async def first(plane: Plane, app: str, config: AppConfig, commit: str | None, user: str) -> None:
    """The admin registering an app accepts its app.yml's policy as it stands."""
    policy = extract(config)
    await asyncio.to_thread(plane.store.accept_policy, app, policy, commit=commit, user=user)


async def accept(plane: Plane, reviewed: Review, env: str | None, user: str) -> Policy:
    """Store what ``reviewed`` proposes as accepted (with ``env``: only that part)."""
    policy = reviewed.proposed
    if env is not None:
        policy = with_env(reviewed.held or nothing(), reviewed.proposed, env)
    await asyncio.to_thread(
        plane.store.accept_policy, reviewed.app, policy, commit=reviewed.commit, user=user
    )
    return policy
