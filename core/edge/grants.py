"""Which domains each app may route: an admin's grants, and the pure rules that read them.

A grant names an app, a pattern and the environments it holds in (``*`` for all, or a
pattern with ``*`` and ``?`` such as ``pr-*`` for previews). A pattern is a name
(``shop.example.com``) or a wildcard (``*.example.com``: every name one label under it,
and the wildcard itself). The rules:

- a name or wildcard is granted to one app: the same pattern for a second app is refused,
  naming the holder;
- an exact name inside another app's wildcard may be granted: the exact name wins (its
  router stands above every wildcard), and the wildcard's app can no longer route it;
- a domain is covered when one of the app's grants for the environment matches it and no
  other app holds that exact name. The zone's apex and a wildcard are covered only by a
  grant of that very apex or wildcard, never by another grant.

app.yml (a push) only chooses among the domains granted; it never widens them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

from core.errors import CoreError
from core.names import domain as domain_name

EVERY_ENV = "*"


class DomainError(CoreError):
    """A domain is not granted, or a grant would take another app's."""


@dataclass(frozen=True)
class DomainGrant:
    app: str
    pattern: str
    env: str = EVERY_ENV
    granted_by: str = ""

    def holds_in(self, env: str) -> bool:
        return fnmatchcase(env, self.env)


def grant_pattern(value: str) -> str:
    """A pattern an admin may grant: a host name, or ``*.`` over at least two labels (a
    wildcard over a whole top-level domain is no one app's)."""
    pattern = domain_name(value)
    if pattern.startswith("*.") and "." not in pattern[2:]:
        raise ValueError(f"{value!r}: a wildcard must sit under a domain, such as *.example.com")
    return pattern


def matches(pattern: str, domain: str) -> bool:
    """Whether ``pattern`` reaches ``domain`` (a name, or a wildcard app.yml routes)."""
    if pattern == domain:
        return True
    if not pattern.startswith("*.") or domain.startswith("*."):
        return False
    return domain.partition(".")[2] == pattern[2:]


def holder(grants: Iterable[DomainGrant], app: str, pattern: str) -> DomainGrant | None:
    """Another app's grant of this very name or wildcard."""
    return next((g for g in grants if g.pattern == pattern and g.app != app), None)


def covering(grants: list[DomainGrant], app: str, env: str, domain: str) -> DomainGrant | None:
    """The app's grant that lets it route ``domain`` in ``env``; None when none does."""
    if holder(grants, app, domain) is not None:
        return None
    return next(
        (g for g in grants if g.app == app and g.holds_in(env) and matches(g.pattern, domain)),
        None,
    )


def refusal(
    grants: list[DomainGrant],
    app: str,
    env: str,
    domains: Iterable[str],
    ask: tuple[str, str] | None = None,
) -> str | None:
    """Why ``app`` may not route ``domains`` in ``env``, with the grant to ask an admin for
    (``ask``: the pattern and environment to suggest instead of the domain and ``env``);
    None when every domain is covered."""
    for domain in domains:
        if covering(grants, app, env, domain) is not None:
            continue
        taken = holder(grants, app, domain)
        if taken is not None:
            return (
                f"{domain} is granted to app {taken.app}: one name routes one app. "
                f"Route another name, or an admin moves it (`domain revoke {taken.app} "
                f"{domain}`, then `domain grant {app} {domain}`)"
            )
        pattern, where = ask or (domain, env)
        return (
            f"{app} may not route {domain} in {env}: no domain grant covers it. An admin "
            f"runs `domain grant {app} {pattern} --env {where}`"
        )
    return None


def excluded_names(grants: list[DomainGrant], app: str, domains: Iterable[str]) -> tuple[str, ...]:
    """Other apps' exact names under ``app``'s wildcards: its wildcard router never matches
    them, so their requests never reach it, even while their own router is gone."""
    wildcards = [d for d in domains if d.startswith("*.")]
    return tuple(
        sorted(
            {
                g.pattern
                for g in grants
                if g.app != app
                and not g.pattern.startswith("*.")
                and any(matches(w, g.pattern) for w in wildcards)
            }
        )
    )


def shown_env(env: str) -> str:
    return "every environment" if env == EVERY_ENV else f"environment {env}"


def from_rows(rows: Iterable[dict[str, object]]) -> list[DomainGrant]:
    return [
        DomainGrant(str(r["app"]), str(r["pattern"]), str(r["env"]), str(r["granted_by"]))
        for r in rows
    ]
