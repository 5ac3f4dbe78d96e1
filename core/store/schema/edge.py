"""The ``edge`` room's migrations: the certificate watch and domain grants.

A new step is one more function here, listed in ``STEPS`` with the next free number."""

from __future__ import annotations

import json
import time

from core.host_rules import routed_hosts
from core.store.sql import Database


def v5_cert_watch(db: Database) -> None:
    """What the certificate watcher last saw and said per domain (serial, expiry, the
    alert it left open), so an alert is posted once and closed once across restarts."""
    db["cert_watch"].create(
        {
            "domain": str,
            "app": str,
            "env": str,
            "serial": str,
            "not_after": float,
            "alert": str,
            "error": str,
        },
        pk="domain",
    )


def v16_domain_grants(db: Database) -> None:
    """Which domains each app may route (core/edge/grants.py). What live releases route
    today was routed before grants existed: it is granted to the app in that environment,
    by ``upgrade``; anything new needs an admin's ``domain grant``."""
    db["domain_grants"].create(
        {
            "id": int,
            "app": str,
            "pattern": str,
            "env": str,
            "granted_by": str,
            "created_at": float,
        },
        pk="id",
        not_null={"app", "pattern", "env", "granted_by", "created_at"},
    )
    db["domain_grants"].create_index(["app", "pattern", "env"], unique=True)
    db["domain_grants"].create_index(["pattern"])
    # the one reader of Traefik's host rules (core/host_rules.py, a leaf both the edge room
    # and this step read): it reads every rule any shipbot wrote, since old releases stay
    # live and are rolled back to, so this step needs no frozen copy of its own
    live = db.execute("SELECT app, env, spec FROM releases WHERE status = 'live'").fetchall()
    for app, env, spec in live:
        labels = json.loads(spec or "{}").get("Labels") or {}
        for domain in sorted(routed_hosts(labels)):
            db.execute(
                "INSERT OR IGNORE INTO domain_grants (app, pattern, env, granted_by, created_at) "
                "VALUES (?, ?, ?, 'upgrade', ?)",
                [app, domain, env, time.time()],
            )


STEPS = (
    v5_cert_watch,
    v16_domain_grants,
)
