"""The ``control`` room's migrations: who may do what and what was said: grants, approvals
and locks, the outbox, webhook deliveries and people, the control plane's own id.

A new step is one more function here, listed in ``STEPS`` with the next free number."""

from __future__ import annotations

import secrets

from core.store.sql import Database


def v2_governance(db: Database) -> None:
    """Grants, approvals, locks and per-app variables (permissions, issue 4)."""
    db["grants"].create(
        {
            "id": int,
            "user": str,
            "role": str,
            "app": str,
            "env": str,
            "granted_by": str,
            "created_at": float,
        },
        pk="id",
    )
    db["grants"].create_index(["user", "role", "app", "env"], unique=True)
    db["approvals"].create(
        {
            "id": int,
            "app": str,
            "env": str,
            "command": str,
            "requester": str,
            "channel": str,
            "platform": str,
            "required": int,
            "approvers": str,
            "status": str,
            "approved_by": str,
            "created_at": float,
            "expires_at": float,
            "decided_at": float,
            "note": str,
        },
        pk="id",
    )
    db["approvals"].create_index(["status", "expires_at"])
    db["locks"].create(
        {
            "key": str,
            "owner": str,
            "pid": int,
            "host": str,
            "what": str,
            "acquired_at": float,
            "heartbeat_at": float,
        },
        pk="key",
    )
    db["variables"].create(
        {
            "app": str,
            "env": str,
            "key": str,
            "value": str,
            "secret": int,
            "updated_by": str,
            "updated_at": float,
        },
        pk=("app", "env", "key"),
    )
    db["deployments"].add_column("approved_by", str)


def v3_outbox(db: Database) -> None:
    """The outbox: messages for chat channels, written first, delivered with retries."""
    db["outbox"].create(
        {
            "id": int,
            "platform": str,
            "channel": str,
            "kind": str,
            "payload": str,
            "status": str,
            "attempts": int,
            "next_attempt_at": float,
            "created_at": float,
            "sent_at": float,
            "last_error": str,
        },
        pk="id",
    )
    db["outbox"].create_index(["platform", "status", "next_attempt_at"])


def v18_deliveries(db: Database) -> None:
    """Webhook deliveries already handled (by the forge's delivery id and by the digest of
    the signed body, kept a week and more) with the commit and who pushed it; the forge
    logins an admin links to chat users; and the person behind each CI token."""
    db["deliveries"].create(
        {
            "key": str,
            "forge": str,
            "delivery": str,
            "body_digest": str,
            "app": str,
            "commit_sha": str,
            "pushed_by": str,
            "received_at": float,
        },
        pk="key",
        not_null={"forge", "delivery", "body_digest", "received_at"},
    )
    db["deliveries"].create_index(["forge", "body_digest"], unique=True)
    db["deliveries"].create_index(["app", "commit_sha"])
    db["deliveries"].create_index(["received_at"])
    db["people"].create(
        {"user": str, "login": str, "added_by": str, "added_at": float},
        pk=("user", "login"),
    )
    db["ci_tokens"].add_column("owner", str)


def v22_identity(db: Database) -> None:
    """The control plane's id, carried by every service it makes (core/ownership.py)."""
    db["identity"].create({"key": str, "value": str}, pk="key")
    db["identity"].insert({"key": "plane", "value": secrets.token_hex(8)})


STEPS = (
    v2_governance,
    v3_outbox,
    v18_deliveries,
    v22_identity,
)
