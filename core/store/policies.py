"""Each app's accepted policy (core/policy): only ``policy accept`` and ``apps add`` write it."""

from __future__ import annotations

import json
from typing import Any

from core.store.connection import Connection


class PoliciesTable(Connection):
    def accept_policy(
        self, app: str, policy: dict[str, Any], *, commit: str | None, user: str
    ) -> None:
        row = {
            "app": app,
            "policy": json.dumps(policy, sort_keys=True),
            "commit_sha": commit,
            "accepted_by": user,
            "accepted_at": self.clock.time(),
        }
        with self._write() as db:
            db["policies"].upsert(row, pk="app")

    def accepted_policy(self, app: str) -> dict[str, Any] | None:
        """The row, its ``policy`` decoded; None for an app no admin accepted a policy of."""
        rows = self._rows("policies", "app = ?", [app])
        return {**rows[0], "policy": json.loads(rows[0]["policy"])} if rows else None
