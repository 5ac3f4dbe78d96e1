"""Who is who on the forges: an admin links a chat user to their forge logins, so the
four-eyes rule (``commands.four_eyes``) knows a pusher when they come to approve."""

from __future__ import annotations

from collections.abc import AsyncIterator

from commands.catalog.context import Context
from commands.grammar import arg, command
from commands.permissions import ADMIN
from commands.replies import Failure, Message, Reply, Result, Table, when
from core.errors import CoreError
from core.pipelines.signatures import FORGES


def _forge_login(login: str) -> str:
    forge = login.partition(":")[0]
    if forge not in FORGES:
        raise CoreError(
            f"{login!r} is not a forge login: write {' or '.join(f'{f}:LOGIN' for f in FORGES)}"
        )
    return login.lower()


@command(
    "people link",
    permission=ADMIN,
    changes_state=True,
    examples=("people link slack:U024BE7LH github:alice",),
)
class PeopleLink:
    """Link a chat user to a forge login: they may not approve the commits that login pushed."""

    user: str = arg("user", "USER")
    login: str = arg("user", "FORGE:LOGIN")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        login = _forge_login(self.login)
        added = await ctx.engine.db.in_thread(
            lambda: ctx.engine.store.link_person(self.user, login, by=ctx.user)
        )
        what = f"{self.user} is {login} on the forge"
        yield Result(True, what if added else f"{what} already: nothing changed")


@command(
    "people unlink",
    permission=ADMIN,
    changes_state=True,
    examples=("people unlink slack:U024BE7LH github:alice",),
)
class PeopleUnlink:
    """Undo a `people link`."""

    user: str = arg("user", "USER")
    login: str = arg("user", "FORGE:LOGIN")

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        login = _forge_login(self.login)
        if not await ctx.engine.db.in_thread(
            lambda: ctx.engine.store.unlink_person(self.user, login)
        ):
            yield Failure(f"{self.user} is not linked to {login}: see `people`")
            return
        yield Result(True, f"{self.user} is no longer linked to {login}")


@command("people", permission=ADMIN, examples=("people",))
class People:
    """List the chat users linked to forge logins."""

    async def run(self, ctx: Context) -> AsyncIterator[Reply]:
        rows = await ctx.engine.db.in_thread(lambda: ctx.engine.store.people())
        if not rows:
            yield Message("no chat user is linked to a forge login: `people link USER LOGIN`")
            return
        yield Table(
            ("user", "forge login", "linked by", "since"),
            tuple((r["user"], r["login"], r["added_by"], when(r["added_at"])) for r in rows),
            title="people",
        )
