"""The ``deploy`` room's migrations: apps, releases, deployments and the audit; requests,
credentials and heartbeats; registry logins and CI tokens; accepted policies; links between
apps; the release live before each one and the guard's rounds.

A new step is one more function here, listed in ``STEPS`` with the next free number."""

from __future__ import annotations

from core.store.sql import Database


def v1_core(db: Database) -> None:
    """Apps, releases, deployments and the audit log."""
    db["apps"].create(
        {
            "name": str,
            "source_kind": str,
            "source": str,
            "ref": str,
            "created_by": str,
            "created_at": float,
        },
        pk="name",
    )
    db["releases"].create(
        {
            "id": int,
            "app": str,
            "env": str,
            "number": int,
            "image": str,
            "image_id": str,
            "source_ref": str,
            "spec": str,
            "status": str,
            "deployed_by": str,
            "created_at": float,
            "finished_at": float,
            "message": str,
        },
        pk="id",
        not_null={"app", "env", "number", "image", "status", "created_at"},
    )
    db["releases"].create_index(["app", "env", "number"], unique=True)
    db["deployments"].create(
        {
            "id": int,
            "app": str,
            "env": str,
            "kind": str,
            "release": int,
            "status": str,
            "started_by": str,
            "pid": int,
            "started_at": float,
            "finished_at": float,
            "message": str,
        },
        pk="id",
    )
    db["deployments"].create_index(["app", "env"])
    db["audit"].create(
        {
            "id": int,
            "ts": float,
            "user": str,
            "channel": str,
            "command": str,
            "app": str,
            "env": str,
            "result": str,
            "detail": str,
        },
        pk="id",
    )
    db["audit"].create_index(["app", "ts"])


def v4_requests_credentials_heartbeats(db: Database) -> None:
    """Approvals pin what was approved (commit, digest, the typed request, break-glass
    reason); apps keep an encrypted git credential; deployments beat, since a PID says
    nothing when shipbot is PID 1 of its container."""
    for column in ("commit_sha", "digest", "request", "break_glass"):
        db["approvals"].add_column(column, str)
    db["apps"].add_column("credential", str)
    db["deployments"].add_column("heartbeat_at", float)
    # a deployment left running by the old code last showed life when it started
    db.execute("UPDATE deployments SET heartbeat_at = started_at")


def v13_images(db: Database) -> None:
    """Registry logins (per app, or ``*`` for every app; the password encrypted) and the
    tokens CI deploys with (only a keyed digest of each is kept)."""
    db["registry_logins"].create(
        {
            "app": str,
            "registry": str,
            "username": str,
            "secret": str,
            "set_by": str,
            "updated_at": float,
        },
        pk=("app", "registry"),
        not_null={"app", "registry", "username", "secret"},
    )
    db["ci_tokens"].create(
        {
            "name": str,
            "app": str,
            "token_hash": str,
            "created_by": str,
            "created_at": float,
            "used_at": float,
        },
        pk="name",
        not_null={"name", "app", "token_hash"},
    )


def v14_policy(db: Database) -> None:
    """Each app's accepted policy (core/policy): the JSON an admin accepted, the commit it
    was read at, who accepted it and when."""
    db["policies"].create(
        {
            "app": str,
            "policy": str,
            "commit_sha": str,
            "accepted_by": str,
            "accepted_at": float,
        },
        pk="app",
        not_null={"app", "policy", "accepted_by"},
    )


def v20_networks(db: Database) -> None:
    """Links an admin granted: ``app`` may reach ``other`` in ``env`` (core/deploy/links.py)."""
    db["links"].create(
        {"app": str, "other": str, "env": str, "granted_by": str, "granted_at": float},
        pk=("app", "other", "env"),
        not_null={"app", "other", "env"},
    )


def v21_truth(db: Database) -> None:
    """Each release remembers the release live before it in its environment (the guard's
    only rollback target), and each server's guard round leaves a heartbeat, so a deploy
    promises a guard only while a ``shipbot serve`` watches."""
    db["releases"].add_column("previous", int)
    db["guard_rounds"].create({"server": str, "seen_at": float, "pid": int}, pk="server")


STEPS = (
    v1_core,
    v4_requests_credentials_heartbeats,
    v13_images,
    v14_policy,
    v20_networks,
    v21_truth,
)
