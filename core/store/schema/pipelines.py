"""The ``pipelines`` room's migrations: git webhooks and preview environments.

A new step is one more function here, listed in ``STEPS`` with the next free number."""

from __future__ import annotations

from core.store.sql import Database


def v11_pipelines(db: Database) -> None:
    """Git webhooks' secrets and forge tokens per app (encrypted by the vault), and the
    preview environments open per pull request."""
    db["webhooks"].create(
        {"app": str, "secret": str, "forge_token": str, "set_by": str, "set_at": float},
        pk="app",
    )
    db["previews"].create(
        {
            "app": str,
            "number": int,
            "env": str,
            "forge": str,
            "repository": str,
            "head_sha": str,
            "head_ref": str,
            "author": str,
            "title": str,
            "domain": str,
            "volumes": str,
            "status": str,
            "opened_at": float,
            "updated_at": float,
        },
        pk=("app", "number"),
        not_null={"app", "number", "env", "head_sha", "status", "opened_at"},
    )


STEPS = (v11_pipelines,)
