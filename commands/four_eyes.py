"""Four eyes stay four: whoever is behind a change never approves it.

A machine asks in someone's name: a webhook deploy for whoever pushed the commit (the
logins the forge's delivery named, kept with it by ``commands.hooks``), a CI deploy for
its token's owner (``ci token create --owner``, by default the admin who made it). An
approver is refused when they are that person: their own id, or a forge login an admin
linked to it (``people link slack:U123 github:alice``).
"""

from __future__ import annotations

from typing import Any

from commands.replies import DENIED, Failure
from core.engine import Engine

CI_USER_PREFIX = "ci:"  # a CI token's caller: ci:NAME (commands.pipelines.CiCaller)


async def identities(engine: Engine, user: str) -> set[str]:
    """``user`` and the forge logins linked to them."""
    return {user, *await engine.db.in_thread(lambda: engine.store.logins_of(user))}


async def behind_it(engine: Engine, user: str, row: dict[str, Any]) -> Failure | None:
    """A refusal when ``user`` pushed the commit a pending request deploys, or owns the CI
    token that asked for it; None when they may approve as far as this rule goes."""
    who = await identities(engine, user)
    requester = row["requester"]
    if requester.startswith(CI_USER_PREFIX):
        token = await engine.db.in_thread(
            lambda: engine.store.ci_token(requester.removeprefix(CI_USER_PREFIX))
        )
        owner = token and (token.get("owner") or token["created_by"])
        if owner in who:
            return Failure(
                f"you own the CI token {requester} that asked for request {row['id']}: "
                "someone else approves it (four eyes)",
                DENIED,
            )
    commit = row.get("commit_sha")
    if commit and await engine.db.in_thread(lambda: engine.store.pushers(commit)) & who:
        return Failure(
            f"you pushed this commit ({commit[:12]}): someone else approves request "
            f"{row['id']} (four eyes)",
            DENIED,
        )
    return None
