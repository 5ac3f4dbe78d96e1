"""Acks first: an acked command's work waits until the HTTP server has answered
(bot/answering.py), so work never holds the answers Bolt polls for."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from bot.answering import Answering
from tests.test_slack import (
    ADMIN,
    Harness,
    signed,
    slack,  # noqa: F401 (the fixture)
    slash,
    until,
)


def held_until(release: asyncio.Event):
    """A handler whose answers all wait for ``release``."""

    async def handler(request: web.Request) -> web.StreamResponse:
        await release.wait()
        return web.Response()

    return handler


async def test_quiet_waits_for_every_answer_then_returns():
    answering = Answering(limit=60)
    release = asyncio.Event()
    handler = held_until(release)
    answers = [asyncio.create_task(answering.middleware(None, handler)) for _ in range(2)]
    await asyncio.sleep(0)
    waiting = asyncio.create_task(answering.quiet())
    await asyncio.sleep(0)
    assert answering.count == 2 and not waiting.done()
    release.set()
    await asyncio.gather(*answers)
    await asyncio.wait_for(waiting, 5)
    assert answering.count == 0


async def test_a_handler_that_fails_still_counts_as_answered():
    answering = Answering(limit=60)

    async def handler(request: web.Request) -> web.StreamResponse:
        raise ValueError("unreadable")

    with pytest.raises(ValueError, match="unreadable"):
        await answering.middleware(None, handler)
    await asyncio.wait_for(answering.quiet(), 5)
    assert answering.count == 0


async def test_a_request_arriving_before_the_quiet_settled_holds_the_work_on():
    answering = Answering(limit=60, settle=0.05)

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response()

    await answering.middleware(None, handler)  # answered: none in flight
    waiting = asyncio.create_task(answering.quiet())
    await asyncio.sleep(0.01)
    await answering.middleware(None, handler)  # the next one of a burst, within the settle
    await asyncio.sleep(0.045)  # the first settle is over, but it did not stay quiet
    assert not waiting.done()
    await asyncio.wait_for(waiting, 5)
    assert answering.arrived == 2


async def test_a_stream_of_requests_cannot_hold_the_work_past_the_limit():
    answering = Answering(limit=0.05)
    handler = held_until(asyncio.Event())  # never released
    answer = asyncio.create_task(answering.middleware(None, handler))
    await asyncio.sleep(0)
    await asyncio.wait_for(answering.quiet(), 5)  # returns at the limit, the answer still out
    assert answering.count == 1 and not answer.done()
    answer.cancel()


async def test_a_commands_work_starts_once_the_server_has_answered(slack: Harness):  # noqa: F811
    """Before: the listener went on from ``ack()`` straight into the dispatcher while its
    own request was still being answered (Bolt polls for the ack every 10 ms and sends the
    answer only once the work next gives the loop back)."""
    answering_when_work_started: list[int] = []
    handle = slack.bot.dispatcher.handle

    def recorded(request):  # the dispatcher's first call for this command
        answering_when_work_started.append(slack.bot.answering.count)
        return handle(request)

    slack.bot.dispatcher.handle = recorded
    body = slash("/ship", "whoami", ADMIN)
    status, _, _ = await slack.post(body, signed(body))
    assert status == 200
    await until(lambda: slack.fake.of("chat.postMessage"))
    assert answering_when_work_started == [0]
