"""The control plane's only state: one SQLite file in WAL mode, with versioned migrations.

Swarm is the source of truth for what runs; this file remembers what was asked, by whom,
and which releases exist to roll back to.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

DB_FILE = "shipbot.db"


def shipbot_home() -> Path:
    """``$SHIPBOT_HOME``, default ``~/.local/share/shipbot``; created with mode 0700."""
    home = Path(os.environ.get("SHIPBOT_HOME") or Path.home() / ".local/share/shipbot")
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    return home


def _v1(db: sqlite_utils.Database) -> None:
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


def _v2(db: sqlite_utils.Database) -> None:
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


def _v3(db: sqlite_utils.Database) -> None:
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


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_v1, _v2, _v3]

# A release's lifecycle.
RELEASE_DEPLOYING = "deploying"
RELEASE_LIVE = "live"
RELEASE_SUPERSEDED = "superseded"
RELEASE_FAILED = "failed"


@dataclass(frozen=True)
class App:
    name: str
    source_kind: str  # "path" or "git"
    source: str
    ref: str | None
    created_by: str
    created_at: float


@dataclass(frozen=True)
class Release:
    id: int
    app: str
    env: str
    number: int
    image: str
    image_id: str | None
    source_ref: str | None
    spec: dict[str, Any]
    status: str
    deployed_by: str
    created_at: float
    finished_at: float | None
    message: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Release:
        return cls(**{**row, "spec": json.loads(row["spec"] or "{}")})


class Store:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or shipbot_home() / DB_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        conn = sqlite3.connect(self.path, check_same_thread=False, timeout=10)
        self.db = sqlite_utils.Database(conn)
        self.db.enable_wal()
        self.db.execute("PRAGMA busy_timeout = 10000")
        self._migrate()

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.db.conn:
                migration(self.db)
                self.db.execute(f"PRAGMA user_version = {number}")

    @property
    def schema_version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    def close(self) -> None:
        self.db.conn.close()

    # apps
    def add_app(self, app: App) -> None:
        with self.db.conn:
            self.db["apps"].insert(app.__dict__, replace=True)

    def get_app(self, name: str) -> App | None:
        rows = list(self.db["apps"].rows_where("name = ?", [name]))
        return App(**rows[0]) if rows else None

    def list_apps(self) -> list[App]:
        return [App(**row) for row in self.db["apps"].rows_where(order_by="name")]

    # releases
    def new_release(
        self,
        *,
        app: str,
        env: str,
        image_for: Callable[[int], str],
        source_ref: str | None,
        deployed_by: str,
    ) -> Release:
        """A new release numbered after the app's last one; its image name comes from the number."""
        with self.db.conn:
            number = self.db.execute(
                "SELECT COALESCE(MAX(number), 0) + 1 FROM releases WHERE app = ?", [app]
            ).fetchone()[0]
            row = {
                "app": app,
                "env": env,
                "number": number,
                "image": image_for(number),
                "image_id": None,
                "source_ref": source_ref,
                "spec": "{}",
                "status": RELEASE_DEPLOYING,
                "deployed_by": deployed_by,
                "created_at": time.time(),
                "finished_at": None,
                "message": None,
            }
            row_id = self.db["releases"].insert(row).last_pk
        return self.release_by_id(row_id)

    def update_release(self, release_id: int, **changes: Any) -> Release:
        if "spec" in changes:
            changes["spec"] = json.dumps(changes["spec"], sort_keys=True)
        with self.db.conn:
            self.db["releases"].update(release_id, changes)
        return self.release_by_id(release_id)

    def mark_live(self, release_id: int, message: str | None = None) -> Release:
        """Make one release the live one of its app and environment."""
        release = self.release_by_id(release_id)
        with self.db.conn:
            self.db.execute(
                "UPDATE releases SET status = ? WHERE app = ? AND env = ? AND status = ?",
                [RELEASE_SUPERSEDED, release.app, release.env, RELEASE_LIVE],
            )
            self.db["releases"].update(
                release_id,
                {"status": RELEASE_LIVE, "finished_at": time.time(), "message": message},
            )
        return self.release_by_id(release_id)

    def release_by_id(self, release_id: int) -> Release:
        return Release.from_row(self.db["releases"].get(release_id))

    def release(self, app: str, env: str, number: int) -> Release | None:
        rows = list(
            self.db["releases"].rows_where("app = ? AND env = ? AND number = ?", [app, env, number])
        )
        return Release.from_row(rows[0]) if rows else None

    def live_release(self, app: str, env: str) -> Release | None:
        rows = list(
            self.db["releases"].rows_where(
                "app = ? AND env = ? AND status = ?", [app, env, RELEASE_LIVE]
            )
        )
        return Release.from_row(rows[0]) if rows else None

    def releases(self, app: str, env: str | None = None, limit: int = 10) -> list[Release]:
        where, args = ("app = ?", [app]) if env is None else ("app = ? AND env = ?", [app, env])
        return [
            Release.from_row(row)
            for row in self.db["releases"].rows_where(
                where, args, order_by="number DESC", limit=limit
            )
        ]

    # deployments
    def start_deployment(
        self,
        *,
        app: str,
        env: str,
        kind: str,
        started_by: str,
        release: int | None = None,
        approved_by: str | None = None,
    ) -> int:
        with self.db.conn:
            return (
                self.db["deployments"]
                .insert(
                    {
                        "app": app,
                        "env": env,
                        "kind": kind,
                        "release": release,
                        "status": "running",
                        "started_by": started_by,
                        "approved_by": approved_by,
                        "pid": os.getpid(),
                        "started_at": time.time(),
                        "finished_at": None,
                        "message": None,
                    }
                )
                .last_pk
            )

    def finish_deployment(self, deployment_id: int, status: str, message: str = "") -> None:
        with self.db.conn:
            self.db["deployments"].update(
                deployment_id,
                {"status": status, "finished_at": time.time(), "message": message},
            )

    def deployment(self, deployment_id: int) -> dict[str, Any]:
        return self.db["deployments"].get(deployment_id)

    def interrupt_orphans(self, alive: Callable[[int], bool]) -> list[dict[str, Any]]:
        """Deployments marked running whose process is gone become ``interrupted``."""
        orphans = [
            row
            for row in self.db["deployments"].rows_where("status = 'running'")
            if not alive(row["pid"])
        ]
        for row in orphans:
            self.finish_deployment(row["id"], "interrupted", "the process running it stopped")
            with self.db.conn:
                self.db.execute(
                    "UPDATE releases SET status = ? WHERE app = ? AND env = ? AND status = ?",
                    [RELEASE_FAILED, row["app"], row["env"], RELEASE_DEPLOYING],
                )
        return orphans

    # audit
    def audit(
        self,
        *,
        user: str,
        channel: str,
        command: str,
        result: str,
        app: str | None = None,
        env: str | None = None,
        detail: str = "",
    ) -> None:
        with self.db.conn:
            self.db["audit"].insert(
                {
                    "ts": time.time(),
                    "user": user,
                    "channel": channel,
                    "command": command,
                    "app": app,
                    "env": env,
                    "result": result,
                    "detail": detail,
                }
            )

    def audit_log(self, app: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        where, args = ("app = ?", [app]) if app else (None, None)
        return list(self.db["audit"].rows_where(where, args, order_by="id DESC", limit=limit))

    # grants
    def add_grant(self, *, user: str, role: str, app: str, env: str, granted_by: str) -> bool:
        """False when the same grant already exists."""
        with self.db.conn:
            before = self.db["grants"].count
            self.db["grants"].insert(
                {
                    "user": user,
                    "role": role,
                    "app": app,
                    "env": env,
                    "granted_by": granted_by,
                    "created_at": time.time(),
                },
                ignore=True,
            )
            return self.db["grants"].count > before

    def remove_grant(self, *, user: str, role: str, app: str, env: str) -> bool:
        with self.db.conn:
            cursor = self.db.execute(
                "DELETE FROM grants WHERE user = ? AND role = ? AND app = ? AND env = ?",
                [user, role, app, env],
            )
            return cursor.rowcount > 0

    def grants(self, user: str | None = None) -> list[dict[str, Any]]:
        where, args = ("user = ?", [user]) if user else (None, None)
        return list(self.db["grants"].rows_where(where, args, order_by="user, role, app, env"))

    # approvals
    def add_approval(self, row: dict[str, Any]) -> int:
        with self.db.conn:
            return (
                self.db["approvals"]
                .insert({**row, "status": "pending", "approved_by": "[]", "decided_at": None})
                .last_pk
            )

    def approval(self, approval_id: int) -> dict[str, Any] | None:
        rows = list(self.db["approvals"].rows_where("id = ?", [approval_id]))
        return rows[0] if rows else None

    def record_approval(self, approval_id: int, approvers: list[str], status: str) -> bool:
        """Add an approver while the request is still pending; False if someone got there first.

        The compare-and-set on the old approver list makes a double click count once.
        """
        with self.db.conn:
            row = self.approval(approval_id)
            if row is None or row["status"] != "pending":
                return False
            cursor = self.db.execute(
                "UPDATE approvals SET approved_by = ?, status = ?, decided_at = ? "
                "WHERE id = ? AND status = 'pending' AND approved_by = ?",
                [
                    json.dumps(approvers),
                    status,
                    time.time() if status != "pending" else None,
                    approval_id,
                    row["approved_by"],
                ],
            )
            return cursor.rowcount == 1

    def decide_approval(self, approval_id: int, status: str, note: str = "") -> bool:
        """Move a pending request to ``status``; False if it was no longer pending."""
        with self.db.conn:
            cursor = self.db.execute(
                "UPDATE approvals SET status = ?, decided_at = ?, note = ? "
                "WHERE id = ? AND status = 'pending'",
                [status, time.time(), note, approval_id],
            )
            return cursor.rowcount == 1

    def finish_approval(self, approval_id: int, status: str, note: str = "") -> None:
        with self.db.conn:
            self.db["approvals"].update(approval_id, {"status": status, "note": note})

    def due_approvals(self, now: float) -> list[dict[str, Any]]:
        return list(
            self.db["approvals"].rows_where(
                "status = 'pending' AND expires_at <= ?", [now], order_by="id"
            )
        )

    # locks
    def acquire_lock(
        self, key: str, *, owner: str, what: str, ttl: float, host: str
    ) -> dict[str, Any] | None:
        """Take the lock, or return the row of whoever holds it (a stale holder loses it)."""
        now = time.time()
        with self.db.conn:
            self.db.execute("BEGIN IMMEDIATE")
            rows = list(self.db["locks"].rows_where("key = ?", [key]))
            if rows and rows[0]["heartbeat_at"] > now - ttl:
                return rows[0]
            self.db["locks"].insert(
                {
                    "key": key,
                    "owner": owner,
                    "pid": os.getpid(),
                    "host": host,
                    "what": what,
                    "acquired_at": now,
                    "heartbeat_at": now,
                },
                replace=True,
            )
        return None

    def heartbeat_lock(self, key: str, owner: str) -> None:
        with self.db.conn:
            self.db.execute(
                "UPDATE locks SET heartbeat_at = ? WHERE key = ? AND owner = ? AND pid = ?",
                [time.time(), key, owner, os.getpid()],
            )

    def release_lock(self, key: str, owner: str) -> None:
        with self.db.conn:
            self.db.execute(
                "DELETE FROM locks WHERE key = ? AND owner = ? AND pid = ?",
                [key, owner, os.getpid()],
            )

    def force_unlock(self, key: str) -> dict[str, Any] | None:
        with self.db.conn:
            rows = list(self.db["locks"].rows_where("key = ?", [key]))
            self.db.execute("DELETE FROM locks WHERE key = ?", [key])
        return rows[0] if rows else None

    # variables (env and secrets)
    def set_variable(
        self, *, app: str, env: str, key: str, value: str, secret: bool, updated_by: str
    ) -> None:
        with self.db.conn:
            self.db["variables"].insert(
                {
                    "app": app,
                    "env": env,
                    "key": key,
                    "value": value,
                    "secret": int(secret),
                    "updated_by": updated_by,
                    "updated_at": time.time(),
                },
                replace=True,
            )

    def unset_variable(self, *, app: str, env: str, key: str) -> bool:
        with self.db.conn:
            cursor = self.db.execute(
                "DELETE FROM variables WHERE app = ? AND env = ? AND key = ?", [app, env, key]
            )
            return cursor.rowcount > 0

    def variables(self, app: str | None = None, env: str | None = None) -> list[dict[str, Any]]:
        clauses, args = [], []
        for column, value in (("app", app), ("env", env)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        return list(
            self.db["variables"].rows_where(
                " AND ".join(clauses) or None, args or None, order_by="app, env, key"
            )
        )

    # outbox
    def enqueue(self, *, platform: str, channel: str, kind: str, payload: str) -> int:
        now = time.time()
        with self.db.conn:
            return (
                self.db["outbox"]
                .insert(
                    {
                        "platform": platform,
                        "channel": channel,
                        "kind": kind,
                        "payload": payload,
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                        "sent_at": None,
                        "last_error": None,
                    }
                )
                .last_pk
            )

    def due_messages(self, platform: str, now: float, limit: int = 20) -> list[dict[str, Any]]:
        return list(
            self.db["outbox"].rows_where(
                "platform = ? AND status = 'pending' AND next_attempt_at <= ?",
                [platform, now],
                order_by="id",
                limit=limit,
            )
        )

    def mark_sent(self, message_id: int) -> None:
        with self.db.conn:
            self.db["outbox"].update(message_id, {"status": "sent", "sent_at": time.time()})

    def mark_retry(self, message_id: int, error: str, delay: float) -> None:
        with self.db.conn:
            self.db.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? "
                "WHERE id = ?",
                [time.time() + delay, error[:500], message_id],
            )
