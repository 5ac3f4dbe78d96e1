"""The one check every way to a route or a DNS record passes (deploy, preview, dns sync):
the domains must be covered by the app's grants (``core.edge.grants``); and the names a
wildcard router must leave to the apps granted them."""

from __future__ import annotations

from collections.abc import Iterable

from core.edge.grants import DomainError, excluded_names, from_rows, refusal
from core.plane import OffLoop


async def require_grants(
    db: OffLoop,
    app: str,
    env: str,
    domains: Iterable[str],
    ask: tuple[str, str] | None = None,
) -> None:
    """Refuse, naming the grant an admin would give, unless every domain is granted."""
    domains = list(domains)
    if not domains:
        return
    why = refusal(
        from_rows(await db.in_thread(lambda: db.store.domain_grants())), app, env, domains, ask
    )
    if why is not None:
        raise DomainError(f"{why}; nothing was changed")


async def wildcard_exclusions(db: OffLoop, app: str, domains: Iterable[str]) -> tuple[str, ...]:
    """Other apps' granted names under ``app``'s wildcards (for its routing labels)."""
    if not any(d.startswith("*.") for d in domains):
        return ()
    return excluded_names(
        from_rows(await db.in_thread(lambda: db.store.domain_grants())), app, domains
    )
