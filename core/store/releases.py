"""Releases (numbered images of an app, per environment) and the deployments that move them."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from core.store.connection import Connection
from core.store.models import (
    RELEASE_DEPLOYING,
    RELEASE_LIVE,
    RELEASE_STATUSES,
    RELEASE_SUPERSEDED,
    RELEASE_UNKNOWN,
    Release,
)


class ReleasesTable(Connection):
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
        with self._write() as db:
            number = db.execute(
                "SELECT COALESCE(MAX(number), 0) + 1 FROM releases WHERE app = ?", [app]
            ).fetchone()[0]
            live = db.execute(
                "SELECT number FROM releases WHERE app = ? AND env = ? AND status = ?",
                [app, env, RELEASE_LIVE],
            ).fetchone()
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
                "created_at": self.clock.time(),
                "finished_at": None,
                "message": None,
                "previous": live[0] if live else None,
            }
            row_id = db["releases"].insert(row).last_pk
        return self.release_by_id(row_id)

    def drop_unbuilt_release(self, release_id: int, deployment_id: int) -> None:
        """A release whose build failed gives its number back: only built releases are
        numbered (the deployment row keeps the failure, with no release)."""
        with self._write() as db:
            db["releases"].delete(release_id)
            db["deployments"].update(deployment_id, {"release": None})

    def update_release(self, release_id: int, **changes: Any) -> Release:
        if "spec" in changes:
            changes["spec"] = json.dumps(changes["spec"], sort_keys=True)
        with self._write() as db:
            db["releases"].update(release_id, changes)
        return self.release_by_id(release_id)

    def set_release_status(
        self, release_id: int, status: str, message: str | None = None
    ) -> Release:
        """Set a release's status (e.g. an ``unknown`` one reconciled from Swarm's labels)."""
        if status not in RELEASE_STATUSES:
            raise ValueError(f"unknown release status {status!r}")
        if status == RELEASE_LIVE:
            return self.mark_live(release_id, message)
        return self.update_release(release_id, status=status, message=message)

    def mark_live(self, release_id: int, message: str | None = None) -> Release:
        """Make one release the live one of its app and environment."""
        with self._write() as db:
            release = self.release_by_id(release_id)
            db.execute(
                "UPDATE releases SET status = ? WHERE app = ? AND env = ? AND status = ?",
                [RELEASE_SUPERSEDED, release.app, release.env, RELEASE_LIVE],
            )
            db["releases"].update(
                release_id,
                {"status": RELEASE_LIVE, "finished_at": self.clock.time(), "message": message},
            )
        return self.release_by_id(release_id)

    def release_by_id(self, release_id: int) -> Release:
        with self._lock, self._busy():
            return Release.from_row(self.db["releases"].get(release_id))

    def release(self, app: str, env: str, number: int) -> Release | None:
        rows = self._rows("releases", "app = ? AND env = ? AND number = ?", [app, env, number])
        return Release.from_row(rows[0]) if rows else None

    def live_release(self, app: str, env: str) -> Release | None:
        rows = self._rows(
            "releases", "app = ? AND env = ? AND status = ?", [app, env, RELEASE_LIVE]
        )
        return Release.from_row(rows[0]) if rows else None

    def releases(self, app: str, env: str | None = None, limit: int = 10) -> list[Release]:
        where, args = ("app = ?", [app]) if env is None else ("app = ? AND env = ?", [app, env])
        return [
            Release.from_row(row)
            for row in self._rows("releases", where, args, order_by="number DESC", limit=limit)
        ]

    def releases_with_status(self, status: str, app: str | None = None) -> list[Release]:
        """Releases of every app (or one) in ``status``, oldest first."""
        where, args = (
            ("status = ?", [status]) if app is None else ("status = ? AND app = ?", [status, app])
        )
        return [Release.from_row(r) for r in self._rows("releases", where, args, order_by="id")]

    def release_numbers(self, app: str) -> list[int]:
        """Every release number the app has, in every environment, ascending."""
        rows = self._query("SELECT number FROM releases WHERE app = ? ORDER BY number", [app])
        return [number for (number,) in rows]

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
        now = self.clock.time()
        with self._write() as db:
            return (
                db["deployments"]
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
                        "started_at": now,
                        "heartbeat_at": now,
                        "finished_at": None,
                        "message": None,
                    }
                )
                .last_pk
            )

    def heartbeat_deployment(self, deployment_id: int) -> bool:
        """Show the deployment is still being worked on; False if it is no longer running
        (for instance another process found it stale and marked it interrupted)."""
        with self._write() as db:
            cursor = db.execute(
                "UPDATE deployments SET heartbeat_at = ? WHERE id = ? AND status = 'running'",
                [self.clock.time(), deployment_id],
            )
            return cursor.rowcount == 1

    def finish_deployment(self, deployment_id: int, status: str, message: str = "") -> None:
        with self._write() as db:
            db["deployments"].update(
                deployment_id,
                {"status": status, "finished_at": self.clock.time(), "message": message},
            )

    def deployment(self, deployment_id: int) -> dict[str, Any]:
        with self._lock, self._busy():
            return self.db["deployments"].get(deployment_id)

    def interrupt_stopped(self, app: str, env: str, pid: int, why: str) -> list[dict[str, Any]]:
        """``app``/``env``'s running deployments of process ``pid``, which is known to have
        stopped (its job was found orphaned), marked interrupted now, not after the
        heartbeat's time-out; their releases still ``deploying`` become ``unknown``."""
        with self._write() as db:
            rows = self._rows(
                "deployments",
                "status = 'running' AND app = ? AND env = ? AND pid = ?",
                [app, env, pid],
                order_by="id",
            )
            for row in rows:
                db["deployments"].update(
                    row["id"],
                    {"status": "interrupted", "finished_at": self.clock.time(), "message": why},
                )
            if rows:
                db.execute(
                    "UPDATE releases SET status = ? WHERE app = ? AND env = ? AND status = ?",
                    [RELEASE_UNKNOWN, app, env, RELEASE_DEPLOYING],
                )
            return [db["deployments"].get(row["id"]) for row in rows]

    def interrupt_orphans(self, stale_after: float) -> list[dict[str, Any]]:
        """Running deployments with no heartbeat for ``stale_after`` seconds become
        ``interrupted``, whatever their PID (shipbot is PID 1 in its image, so a PID says
        nothing); their releases still ``deploying`` become ``unknown`` until the engine
        reconciles them from Swarm's labels. Returns the interrupted deployments."""
        now = self.clock.time()
        with self._write() as db:
            orphans = self._rows(
                "deployments",
                "status = 'running' AND COALESCE(heartbeat_at, started_at, 0) < ?",
                [now - stale_after],
                order_by="id",
            )
            for row in orphans:
                silent = now - (row["heartbeat_at"] or row["started_at"] or 0)
                db["deployments"].update(
                    row["id"],
                    {
                        "status": "interrupted",
                        "finished_at": now,
                        "message": f"no heartbeat for {silent:.0f}s: the process running it "
                        "stopped",
                    },
                )
                db.execute(
                    "UPDATE releases SET status = ? WHERE app = ? AND env = ? AND status = ?",
                    [RELEASE_UNKNOWN, row["app"], row["env"], RELEASE_DEPLOYING],
                )
            return [db["deployments"].get(row["id"]) for row in orphans]
