"""Who may do what: roles, grants on app and environment patterns, deny by default.

A user is ``platform:id`` with the platform's immutable id, never a display name.
Bootstrap admins come from shipbot.yml; everyone else needs a grant.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

from core.errors import CoreError

PUBLIC = "public"
VIEW = "view"
DEPLOY = "deploy"
ADMIN = "admin"

ROLES: dict[str, frozenset[str]] = {
    "viewer": frozenset({VIEW}),
    "deployer": frozenset({VIEW, DEPLOY}),
    "admin": frozenset({VIEW, DEPLOY, ADMIN}),
}
# The least role that carries each permission, for messages that say what is missing.
ROLE_FOR = {VIEW: "viewer", DEPLOY: "deployer", ADMIN: "admin"}


class Denied(CoreError):
    """A command's own check found the user may not do this (audited as denied)."""


@dataclass(frozen=True)
class Grant:
    user: str
    role: str
    app: str = "*"
    env: str = "*"

    def covers(self, permission: str, app: str | None, env: str | None) -> bool:
        """``app``/``env`` None: the command names none, so the grant must hold for all."""
        return (
            permission in ROLES[self.role]
            and (fnmatchcase(app, self.app) if app is not None else self.app == "*")
            and (fnmatchcase(env, self.env) if env is not None else self.env == "*")
        )


class Policy:
    def __init__(self, admins: Iterable[str], grants: Iterable[Grant]) -> None:
        self.admins = frozenset(admins)
        self.grants = tuple(grants)

    def of(self, user: str) -> list[Grant]:
        if user in self.admins:
            return [Grant(user, "admin"), *(g for g in self.grants if g.user == user)]
        return [g for g in self.grants if g.user == user]

    def allows(self, user: str, permission: str, app: str | None, env: str | None) -> bool:
        if permission == PUBLIC:
            return True
        return any(g.covers(permission, app, env) for g in self.of(user))

    def sees(self, user: str, permission: str, app: str) -> bool:
        """May the user ``permission`` on ``app`` in at least one environment?"""
        return any(permission in ROLES[g.role] and fnmatchcase(app, g.app) for g in self.of(user))

    def may_ever(self, user: str, permission: str) -> bool:
        """Has the user this permission anywhere (for `help`)."""
        return permission == PUBLIC or any(permission in ROLES[g.role] for g in self.of(user))

    def has_role(self, user: str, role: str, app: str, env: str) -> bool:
        """Holds ``role`` or a stronger one on app/env (approvers are named by role)."""
        return any(
            ROLES[role] <= ROLES[g.role] and fnmatchcase(app, g.app) and fnmatchcase(env, g.env)
            for g in self.of(user)
        )

    def denial(self, user: str, permission: str, app: str | None, env: str | None) -> str:
        role = ROLE_FOR[permission]
        where = f"{app or 'every app'}/{env or 'every environment'}"
        hint = (
            f"grant {user} {role}"
            + (f" --app {app}" if app else "")
            + (f" --env {env}" if env else "")
        )
        who = (
            f"An admin can run `{hint}`."
            if self.admins
            else f"No admin is configured yet: add `admins: [{user}]` to shipbot.yml in "
            "$SHIPBOT_HOME to make yourself one."
        )
        return f"{user} may not {permission} on {where}: that needs the {role} role there. {who}"
