"""The dispatcher's steps, each run alone on a request the real dispatcher prepared (the
engine on the in-memory swarm), and a step inserted in the list the way metrics or a rate
limit would be."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest

from commands import steps
from commands.dispatch import ChatRequest, Dispatcher
from commands.grammar import UsageError, parse
from commands.permissions import Denied
from commands.replies import DENIED, FAILED, INTERNAL, USAGE, Failure, Message, Reply, Result
from commands.steps import Flow, Next, Work
from core.errors import CoreError
from core.swarm.testing import FakeSwarm
from tests import test_guard_fast as guard
from tests.chat import failure, result, say

fake, bot = guard.fake, guard.bot  # the guard tests' swarm and dispatcher, web registered
ALICE, BOB = "console:alice", "console:bob"  # alice is an admin; bob has no grant
MARK = Message("the steps after ran")


async def work_of(bot: Dispatcher, text: str, user: str = ALICE, **request: Any) -> Work:
    return await bot.prepare(ChatRequest("console", user, "console", text, **request), parse(text))


class Rest:
    """The steps after the one under test: replies ``replies`` (or raises), and says whether
    it ran."""

    def __init__(self, *replies: Reply, raises: Exception | None = None) -> None:
        self.replies, self.raises, self.ran = replies, raises, False

    def __call__(self) -> AsyncIterator[Reply]:
        async def rest() -> AsyncIterator[Reply]:
            self.ran = True
            for reply in self.replies:
                yield reply
            if self.raises is not None:
                raise self.raises

        return rest()


async def alone(step: steps.Step, flow: Any, work: Work, rest: Next) -> list[Reply]:
    return [reply async for reply in step(flow, work, rest)]


def test_the_dispatcher_runs_the_steps_in_this_order(bot: Dispatcher):
    assert bot.steps == [
        steps.authorise,
        steps.report,
        steps.anchor,
        steps.resolve,
        steps.precheck,
        steps.gate,
        steps.lock,
        steps.publish,
        steps.run,
    ]


async def test_authorise_refuses_a_user_without_the_role_and_runs_nothing_after(bot):
    work, rest = await work_of(bot, "scale web 3", BOB), Rest(MARK)
    (refusal,) = await alone(steps.authorise, bot, work, rest)
    assert isinstance(refusal, Failure) and refusal.kind == DENIED
    assert (work.outcome, work.detail) == (DENIED, refusal.message)
    assert not rest.ran
    work, rest = await work_of(bot, "scale web 3", ALICE), Rest(MARK)
    assert await alone(steps.authorise, bot, work, rest) == [MARK]
    assert work.outcome == "ok"


@pytest.mark.parametrize(
    ("error", "kind", "outcome"),
    [
        (UsageError("scale: missing N", "scale APP N"), USAGE, USAGE),
        (Denied("not yours"), DENIED, DENIED),
        (CoreError("the swarm said no"), FAILED, FAILED),
        (RuntimeError("a bug"), INTERNAL, "error"),
    ],
)
async def test_report_turns_what_the_steps_after_raise_into_a_reply(bot, error, kind, outcome):
    work = await work_of(bot, "scale web 3")
    replies = await alone(steps.report, bot, work, Rest(MARK, raises=error))
    assert replies[0] == MARK and len(replies) == 2
    assert isinstance(replies[1], Failure) and replies[1].kind == kind
    assert work.outcome == outcome
    if kind == INTERNAL:  # the bug's words stay in the log, the chat gets what to do
        assert "a bug" not in replies[1].message and "Check `status`" in replies[1].message
    else:
        assert replies[1].message == str(error) == work.detail


async def test_resolve_reads_app_yml_once_for_a_command_that_resolves(bot):
    work = await work_of(bot, "deploy web 2")
    assert await alone(steps.resolve, bot, work, Rest(MARK)) == [MARK]
    assert work.ctx.resolved is not None
    status = await work_of(bot, "status web")
    assert await alone(steps.resolve, bot, status, Rest(MARK)) == [MARK]
    assert status.ctx.resolved is None


async def test_precheck_raises_what_the_command_finds_before_anything_after_runs(bot):
    work, rest = await work_of(bot, "run web"), Rest(MARK)  # no command after --
    with pytest.raises(UsageError, match="give the command after `--`"):
        await alone(steps.precheck, bot, work, rest)
    assert not rest.ran
    work = await work_of(bot, "run web -- true")
    assert await alone(steps.precheck, bot, work, Rest(MARK)) == [MARK]


async def test_gate_break_glass_is_for_admins_and_announced(bot):
    bot.engine.store.add_grant(user=BOB, role="deployer", app="web", env="*", granted_by=ALICE)
    work, rest = await work_of(bot, "scale web 3 --break-glass 'db down'", BOB), Rest(MARK)
    (refusal,) = await alone(steps.gate, bot, work, rest)
    assert isinstance(refusal, Failure) and refusal.kind == DENIED
    assert "--break-glass is for admins" in refusal.message and not rest.ran
    work = await work_of(bot, "scale web 3 --break-glass 'db down'", ALICE)
    notice, after = await alone(steps.gate, bot, work, Rest(MARK))
    assert isinstance(notice, Message) and after == MARK
    assert notice.text.startswith("⚠️ break glass: console:alice ran `scale web 3 --break-glass")
    alerts = [r for r in bot.engine.store._rows("outbox") if r["kind"] == "alerts"]
    assert [r["channel"] for r in alerts] == ["CALERTS"]
    reading = await work_of(bot, "status web")  # nothing to gate
    assert await alone(steps.gate, bot, reading, Rest(MARK)) == [MARK]


async def test_lock_holds_the_apps_lock_while_the_steps_after_run(bot):
    store = bot.engine.store
    work = await work_of(bot, "scale web 3")
    holders: list[Any] = []

    async def rest() -> AsyncIterator[Reply]:
        holders.append(store.acquire_lock("web/production", owner=BOB, what="x", ttl=60, host="h"))
        yield MARK

    assert await alone(steps.lock, bot, work, rest) == [MARK]
    assert holders[0]["owner"] == ALICE and "scale web 3" in holders[0]["what"]
    assert store.acquire_lock("web/production", owner=BOB, what="x", ttl=60, host="h") is None


class Recorder:
    def __init__(self) -> None:
        self.published: list[tuple[Any, ...]] = []

    def publish(self, *args: Any, **kwargs: Any) -> int:
        self.published.append((*args, kwargs))
        return 1


async def test_publish_sends_a_locking_changes_result_to_the_deploys_channels(bot):
    flow = SimpleNamespace(notifier=Recorder())
    done = Result(True, "web scaled to 3")
    work = await work_of(bot, "scale web 3")
    assert await alone(steps.publish, flow, work, Rest(MARK, done)) == [MARK, done]
    assert flow.notifier.published == [
        ("deploys", "web", "production", done, {"skip": ("console", "console")})
    ]
    reading = await work_of(bot, "status web")  # takes no lock: its result stays here
    flow.notifier.published.clear()
    assert await alone(steps.publish, flow, reading, Rest(done)) == [done]
    assert flow.notifier.published == []


class Anchors:
    def __init__(self) -> None:
        self.set: list[dict[str, Any]] = []

    def set_guard_anchor(self, **row: Any) -> bool:
        self.set.append(row)
        return True


@pytest.mark.parametrize("platform", ["slack", "discord"])
async def test_anchor_remembers_the_message_that_shows_a_deploys_result(bot, platform):
    store = Anchors()
    flow = SimpleNamespace(engine=SimpleNamespace(plane=SimpleNamespace(store=store)))
    fields = {"app": "web", "env": "staging", "release": "2"}
    live = Result(True, "release 2 is live", fields=fields)
    shown = ["1700000000.000100"]
    work = await bot.prepare(
        ChatRequest(platform, "U1", "C1", "deploy web 2", shown_at=lambda: shown[0]),
        parse("deploy web 2"),
    )
    assert await alone(steps.anchor, flow, work, Rest(MARK, live)) == [MARK, live]
    assert store.set == [
        dict(
            platform=platform,
            channel="C1",
            app="web",
            env="staging",
            release=2,
            anchor="1700000000.000100",
        )
    ]
    store.set.clear()
    failed = Result(False, "deploy failed", fields={"app": "web", "env": "staging"})
    await alone(steps.anchor, flow, work, Rest(failed))  # no release to guard
    shown[0] = None  # type: ignore[call-overload]
    await alone(steps.anchor, flow, work, Rest(live))  # the chat showed no message
    assert store.set == []


async def test_a_step_inserted_in_the_list_sees_every_request(bot: Dispatcher, fake: FakeSwarm):
    """Metrics and a rate limit, added as steps: nothing else of the dispatcher changes."""
    seen: list[tuple[str, str]] = []
    asked: dict[str, int] = {}

    async def metrics(flow: Flow, work: Work, call_next: Next) -> AsyncIterator[Reply]:
        async with steps.follow(call_next) as replies:
            async for reply in replies:
                yield reply
        seen.append((work.spec.name, work.outcome))

    async def one_change_each(flow: Flow, work: Work, call_next: Next) -> AsyncIterator[Reply]:
        if work.changes:
            asked[work.ctx.user] = asked.get(work.ctx.user, 0) + 1
            if asked[work.ctx.user] > 1:
                work.outcome, work.detail = "limited", "one change each in this test"
                yield Failure("rate limited: one change each; try again later", "limited")
                return
        async with steps.follow(call_next) as replies:
            async for reply in replies:
                yield reply

    bot.insert_step(metrics, before=steps.report)
    bot.insert_step(one_change_each, before=steps.resolve)
    assert bot.steps.index(metrics) == 1 and bot.steps.index(one_change_each) == 4
    assert result(await say(bot, "deploy web 1")).ok
    assert failure(await say(bot, "scale web 5")).message.startswith("rate limited")
    assert failure(await say(bot, "scale web 5", BOB)).kind == DENIED
    assert seen == [("deploy", "ok"), ("scale", "limited")]  # bob never got past authorise
    service = fake.inspect_service("web-production")
    assert service is not None  # the limited scale did not run:
    assert service["Spec"]["Mode"]["Replicated"]["Replicas"] == 2
    last = bot.engine.store.audit_log(limit=1)[0]
    assert (last["command"], last["result"]) == ("scale web 5", DENIED)
    assert bot.engine.store.audit_log(limit=2)[1]["result"] == "limited"
