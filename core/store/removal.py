"""What `apps remove` forgets: an undeployed environment's rows, or a whole app's
registration. The audit keeps its history; a webhook's deliveries stay as a replay guard."""

from __future__ import annotations

from core.store.connection import Connection

# the rows of an environment that ran: gone when it is undeployed (its variables, secrets
# and the admin decisions about it stay with the registration)
ENVIRONMENT_TABLES = (
    "releases",
    "deployments",
    "cert_watch",
    "previews",
    "env_servers",
    "drift_watch",
    "guards",
)
# the registration: every row that names the app, in any environment
APP_TABLES = (
    *ENVIRONMENT_TABLES,
    "variables",
    "policies",
    "domain_grants",
    "database_attachments",
    "webhooks",
    "registry_logins",
    "ci_tokens",
)


class RemovalTables(Connection):
    def undeploy_environment(self, app: str, env: str) -> dict[str, int]:
        """Delete the rows an environment's deploys left; how many of each went."""
        gone: dict[str, int] = {}
        with self._write() as db:
            for table in ENVIRONMENT_TABLES:
                sql = f"DELETE FROM {table} WHERE app = ? AND env = ?"  # noqa: S608 (fixed names)
                gone[table] = db.execute(sql, [app, env]).rowcount
        return gone

    def forget_app(self, app: str, note: str) -> dict[str, int]:
        """Unregister ``app``: its row and every row naming it; grants that name it alone
        (not a pattern), links either way; its pending approvals are rejected (``note``)."""
        gone: dict[str, int] = {}
        with self._write() as db:
            for table in APP_TABLES:
                sql = f"DELETE FROM {table} WHERE app = ?"  # noqa: S608 (fixed names)
                gone[table] = db.execute(sql, [app]).rowcount
            gone["grants"] = db.execute("DELETE FROM grants WHERE app = ?", [app]).rowcount
            links = "DELETE FROM links WHERE app = ? OR other = ?"
            gone["links"] = db.execute(links, [app, app]).rowcount
            gone["pending approvals"] = db.execute(
                "UPDATE approvals SET status = 'rejected', decided_at = ?, note = ? "
                "WHERE app = ? AND status = 'pending'",
                [self.clock.time(), note, app],
            ).rowcount
            gone["apps"] = db.execute("DELETE FROM apps WHERE name = ?", [app]).rowcount
        return gone
