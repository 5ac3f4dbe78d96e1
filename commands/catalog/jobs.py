"""One-off commands on an app's live release: ``run APP [--env E] -- CMD…``."""

from __future__ import annotations

from collections.abc import AsyncIterator

from commands.catalog.context import Context, env_of, relay
from commands.grammar import UsageError, arg, command, option, rest
from commands.permissions import DEPLOY
from commands.replies import Reply


@command(
    "run",
    permission=DEPLOY,
    locks=True,
    approvable=True,
    examples=("run hello -- python manage.py migrate", "run hello --env staging -- ls /data"),
)
class Run:
    """Run a command once on the live release's image, with its env, secrets and volumes.

    Everything after `--` is the command, word for word: no shell runs it (write
    `-- sh -c '…'` for one). Its output comes back, then its exit code. An approval covers
    exactly the command it shows.
    """

    app: str = arg("app", "APP")
    env: str | None = option("env", "ENV")
    break_glass: str | None = option("text", "REASON")
    command: tuple[str, ...] = rest("CMD")

    def precheck(self, ctx: Context) -> None:
        if not self.command or not self.command[0].strip():
            raise UsageError(
                "run: give the command after `--`, e.g. `run APP -- python manage.py migrate`",
                self.spec.usage,  # type: ignore[attr-defined]
            )

    def run(self, ctx: Context) -> AsyncIterator[Reply]:
        return relay(ctx.engine.run_once(self.app, self.command, user=ctx.user, env=env_of(self)))
