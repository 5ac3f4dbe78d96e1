"""`db remove` and `restore` over a database that exists (the live one, or an existing --to
one) wait for someone else's approval, bound to the database and the backup reviewed;
admins may break the glass. What the data family shows follows `db status`'s rule. Through
the real dispatcher, store and approvals, on the fake swarm with moto as S3."""

from __future__ import annotations

import time

from commands.replies import DENIED, ApprovalRequest, Message
from core.data import review
from tests import test_backup_schedules as schedules
from tests.chat import failure, result, say, steps, table
from tests.test_backup_schedules import ADMIN, create_db, tools

plane = schedules.plane  # the same fixture: moto (conftest), fake swarm

BOB = "console:bob"  # a second admin of everything: the one who approves


def asked(replies) -> ApprovalRequest:
    found = [r for r in replies if isinstance(r, ApprovalRequest)]
    assert len(found) == 1, replies
    return found[0]


async def two_admins(bot) -> None:
    assert result(await say(bot, f"grant {BOB} admin", ADMIN)).ok


async def test_db_remove_waits_for_someone_else_and_keeps_the_volume(plane):
    bot, swarm = plane
    await create_db(bot, swarm)
    await two_admins(bot)
    request = asked(await say(bot, "db remove maindb", ADMIN))
    assert request.requester == ADMIN and request.approvers == ("admin",)
    assert request.details[1] == "its data stays on volume db-maindb-data"
    assert swarm.inspect_service("db-maindb") is not None  # nothing ran yet
    own = failure(await say(bot, f"approve {request.id}", ADMIN))
    assert own.kind == DENIED and "someone else must approve it" in own.message
    done = result(await say(bot, f"approve {request.id}", BOB))
    assert done.title == "database maindb removed; its data stays on volume db-maindb-data"
    assert swarm.inspect_service("db-maindb") is None
    assert swarm.inspect_volume("db-maindb-data") is not None
    row = bot.engine.store.approval(request.id)
    assert row["status"] == "executed" and row["requester"] == ADMIN
    audit = [(r["command"], r["result"]) for r in bot.engine.store.db["audit"].rows]
    assert ("db remove maindb", "pending") in audit and (f"approve {request.id}", "ok") in audit


async def test_only_an_admin_of_every_app_may_approve_it(plane):
    bot, swarm = plane
    await create_db(bot, swarm)
    assert result(await say(bot, "grant console:ann admin --app shop", ADMIN)).ok
    request = asked(await say(bot, "db remove maindb --delete-data", ADMIN))
    assert request.details[1] == "its data is deleted with it (volume db-maindb-data)"
    denied = failure(await say(bot, f"approve {request.id}", "console:ann"))
    assert denied.kind == DENIED
    assert swarm.inspect_service("db-maindb") is not None
    assert bot.engine.store.approval(request.id)["status"] == "pending"


async def test_break_glass_is_for_admins_announced_and_audited(plane):
    bot, swarm = plane
    await create_db(bot, swarm)
    replies = await say(bot, 'db remove maindb --delete-data --break-glass "disk full"', ADMIN)
    notice = [r for r in replies if isinstance(r, Message)]
    assert notice and "break glass" in notice[0].text and "disk full" in notice[0].text
    assert result(replies).title == "database maindb removed with its data (volume db-maindb-data)"
    assert swarm.inspect_volume("db-maindb-data") is None
    (audit,) = [r for r in bot.engine.store.db["audit"].rows if "break-glass" in r["command"]]
    assert audit["detail"].startswith("break glass (disk full)")
    assert result(await say(bot, "grant console:dee deployer", ADMIN)).ok
    denied = failure(await say(bot, 'db remove other --break-glass "why not"', "console:dee"))
    assert denied.kind == DENIED


async def test_an_approval_holds_for_the_database_it_reviewed(plane):
    bot, swarm = plane
    await create_db(bot, swarm)
    await two_admins(bot)
    request = asked(await say(bot, "db remove maindb", ADMIN))
    # meanwhile the database is removed and another one made under its name
    assert result(await say(bot, 'db remove maindb --delete-data --break-glass "redo"', BOB)).ok
    await create_db(bot, swarm)
    stale = failure(await say(bot, f"approve {request.id}", BOB))
    assert "changed since requested" in stale.message
    assert swarm.inspect_service("db-maindb") is not None
    assert bot.engine.store.approval(request.id)["status"] == "stale"


async def test_nothing_is_asked_for_a_database_that_is_not_there_or_still_attached(plane):
    bot, swarm = plane
    missing = failure(await say(bot, "db remove nosuch", ADMIN))
    assert missing.message == "no database 'nosuch': `db list` shows the ones you may see"
    assert bot.engine.store.db["approvals"].count == 0


async def test_restore_over_the_live_database_after_approval(plane):
    bot, swarm = plane
    container = await create_db(bot, swarm)
    await two_admins(bot)
    tools(swarm)
    assert result(await say(bot, "backup run maindb", ADMIN)).ok
    (backup,) = bot.engine.store.good_backups("maindb")
    request = asked(await say(bot, f"restore maindb {backup['id']}", ADMIN))
    assert request.details[0] == "replaces the data of the live postgres database maindb"
    assert backup["key"] in request.details[1]
    swarm.execs.clear()
    done = result(await say(bot, f"approve {request.id}", BOB))
    assert done.ok and done.title == f"backup {backup['id']} of maindb restored into maindb"
    assert done.details == ("public.orders: 3", "public.users: 2")
    (restored,) = [e for e in swarm.execs if e[1][0] == "pg_restore"]
    assert restored[0] == container and restored[1][4:6] == ("--clean", "--if-exists")
    # the database lock was held and is free again
    assert bot.engine.store.acquire_lock("db/maindb", owner="t", what="t", ttl=60, host="h") is None


async def test_a_restore_approval_holds_for_the_backup_it_reviewed(plane):
    bot, swarm = plane
    await create_db(bot, swarm)
    await two_admins(bot)
    tools(swarm)
    assert result(await say(bot, "backup run maindb", ADMIN)).ok
    (backup,) = bot.engine.store.good_backups("maindb")
    request = asked(await say(bot, f"restore maindb {backup['id']}", ADMIN))
    bot.engine.store.mark_backups_deleted([backup["id"]], time.time())  # retention took it
    swarm.execs.clear()
    stale = failure(await say(bot, f"approve {request.id}", BOB))
    assert "changed since requested" in stale.message
    assert not [e for e in swarm.execs if e[1][0] == "pg_restore"]
    gone = failure(await say(bot, f"restore maindb {backup['id']}", ADMIN))
    assert gone.message == f"backup {backup['id']} of maindb is deleted by retention"
    nosuch = failure(await say(bot, "restore maindb 99", ADMIN))
    assert nosuch.message == "maindb has no backup 99: `backup list maindb`"


async def test_restore_into_an_existing_database_waits_for_approval(plane):
    """Issue 20, item 11: `restore OTHER ID --to EXISTING` replaced EXISTING at once."""
    bot, swarm = plane
    await create_db(bot, swarm)
    target = await create_db(bot, swarm, "live")
    await two_admins(bot)
    tools(swarm)
    assert result(await say(bot, "backup run maindb", ADMIN)).ok
    (backup,) = bot.engine.store.good_backups("maindb")
    swarm.execs.clear()
    request = asked(await say(bot, f"restore maindb {backup['id']} --to live", ADMIN))
    assert request.details[0] == "replaces the data of the existing postgres database live"
    assert request.details[1].startswith(f"with backup {backup['id']} of maindb from ")
    assert not [e for e in swarm.execs if e[1][0] == "pg_restore"]  # nothing ran yet
    assert bot.engine.store.approval(request.id)["status"] == "pending"
    own = failure(await say(bot, f"approve {request.id}", ADMIN))
    assert own.kind == DENIED
    done = result(await say(bot, f"approve {request.id}", BOB))
    assert done.title == f"backup {backup['id']} of maindb restored into live"
    (restored,) = [e for e in swarm.execs if e[1][0] == "pg_restore"]
    assert restored[0] == target and restored[1][4:6] == ("--clean", "--if-exists")
    assert bot.engine.store.acquire_lock("db/live", owner="t", what="t", ttl=60, host="h") is None
    # the approval holds for the target as created: made again since, it is stale
    request = asked(await say(bot, f"restore maindb {backup['id']} --to live", ADMIN))
    assert result(await say(bot, 'db remove live --delete-data --break-glass "redo"', BOB)).ok
    await create_db(bot, swarm, "live")
    swarm.execs.clear()
    stale = failure(await say(bot, f"approve {request.id}", BOB))
    assert "changed since requested" in stale.message
    assert not [e for e in swarm.execs if e[1][0] == "pg_restore"]


async def test_the_data_family_shows_what_db_status_shows(plane, tmp_path):
    """Issue 20, item 17b: `backup report` listed databases and failures `db status` hid."""
    bot, swarm = plane
    await create_db(bot, swarm)
    await create_db(bot, swarm, "secretdb")
    tools(swarm, dump=b"PGDMP tiny")
    failed = result(await say(bot, "backup run secretdb", ADMIN))
    assert not failed.ok
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "app.yml").write_text("name: shop\nimage: shop:1\n")
    assert result(await say(bot, f"apps add shop --path {tmp_path / 'shop'}", ADMIN)).ok
    assert result(await say(bot, "db attach maindb shop", ADMIN)).ok
    assert result(await say(bot, "db attach secretdb shop --env staging", ADMIN)).ok
    viewer = "console:vera"  # views shop in production only
    assert result(await say(bot, f"grant {viewer} viewer --app shop --env production", ADMIN)).ok
    everything = table(await say(bot, "backup report", ADMIN))
    assert [r[0] for r in everything.rows] == ["maindb", "secretdb"]
    assert everything.rows[1][4] == "1"  # secretdb's failure
    report = table(await say(bot, "backup report", viewer))
    assert [r[0] for r in report.rows] == ["maindb"]
    assert [r[0] for r in table(await say(bot, "db list", viewer)).rows] == ["maindb"]
    hidden = "no database 'secretdb': `db list` shows the ones you may see"
    assert failure(await say(bot, "db status secretdb", viewer)).message == hidden
    assert failure(await say(bot, "backup list secretdb", viewer)).message == hidden
    # of the app environments a database is attached to, each sees those they view
    assert result(await say(bot, "db attach maindb shop --env staging", ADMIN)).ok
    details = dict((await say(bot, "db status maindb", viewer))[0].rows)
    assert details["apps"] == "shop (production)"
    details = dict((await say(bot, "db status maindb", ADMIN))[0].rows)
    assert details["apps"] == "shop (production), shop (staging)"
    assert result(await say(bot, "grant console:bea viewer --app blog", ADMIN)).ok
    nothing = await say(bot, "backup report", "console:bea")
    assert [r.text for r in nothing if isinstance(r, Message)] == [
        "no databases you may see: an admin creates one with `db create KIND NAME`"
    ]


async def test_restore_into_a_new_database_asks_no_approval(plane):
    bot, swarm = plane
    await create_db(bot, swarm)
    tools(swarm)
    assert result(await say(bot, "backup run maindb", ADMIN)).ok
    replies = await say(bot, "restore maindb 1 --to maindb", ADMIN)  # --to itself: live
    assert isinstance(asked(replies), ApprovalRequest)
    replies = await say(bot, "restore maindb 1 --to copy", ADMIN)
    assert not [r for r in replies if isinstance(r, ApprovalRequest)]
    assert (
        steps(replies)[0]
        == "creating service db-copy (postgres:16) on volume db-copy-data on server local"
    )
    assert bot.engine.store.db["approvals"].count == 1  # the live one's only


def test_the_digest_covers_what_was_reviewed():
    db = {"name": "maindb", "kind": "postgres", "version": "16", "image": "p:16"}
    db |= {"server": "local", "created_at": 1.0, "credentials": "sealed"}
    kept = {"id": 3, "database": "maindb", "kind": "postgres", "key": "k", "sha256": "ab"}
    kept |= {"size": 9, "status": "ok", "deleted_at": None}
    base = review.digest(db, kept)
    assert base == review.digest(dict(db), dict(kept)) and len(base) == 16
    assert review.digest(db | {"credentials": "resealed"}, kept) == base  # not a fact
    assert review.digest(db | {"created_at": 2.0}, kept) != base  # made again
    assert review.digest(db, kept | {"deleted_at": 5.0}) != base  # retention took it
    assert review.digest(db, kept | {"sha256": "cd"}) != base
    assert review.digest(None, kept) != base and review.digest(db) != base


async def test_backup_list_names_a_database_that_is_not_there(plane):
    bot, swarm = plane
    missing = failure(await say(bot, "backup list nosuch", ADMIN))
    assert missing.message == "no database 'nosuch': `db list` shows the ones you may see"
    await create_db(bot, swarm)
    assert await say(bot, "backup list maindb", ADMIN) == [
        Message("maindb has no backups yet: `backup run maindb`")
    ]
