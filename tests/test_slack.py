"""The Slack adapter against a local fake Web API, with signed requests and Socket Mode."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import shutil
import time
import urllib.parse
import uuid
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
import yaml

from bot.conversation import Conversation
from bot.livelog import LIVE_LINES
from bot.slack import INVITE, SlackBot, SlackSurface, web_client
from bot.slack_logs import SlackLiveLog
from commands.dispatch import Dispatcher
from commands.replies import Log, Result
from tests.clock import ManualClock
from tests.fake_slack import FakeSlack

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
ADMIN = "UADMIN"
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "hello"
NOWHERE = "http://127.0.0.1:9/respond"  # the discard port: a reply sent here would fail


async def until(check: Callable[[], object], timeout: float = 60.0) -> object:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.05)
    return value


def signed(
    body: str,
    *,
    secret: str = SECRET,
    ts: int | None = None,
    content_type: str = "application/x-www-form-urlencoded",
) -> dict[str, str]:
    stamp = str(int(time.time()) if ts is None else ts)
    digest = hmac.new(secret.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256)
    return {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": "v0=" + digest.hexdigest(),
        "Content-Type": content_type,
    }


def slash(
    command: str, text: str, user: str, channel: str = "C1", *, response_url: str = NOWHERE
) -> str:
    return urllib.parse.urlencode(
        {
            "command": command,
            "text": text,
            "user_id": user,
            "channel_id": channel,
            "team_id": "T1",
            "api_app_id": "A1",
            "trigger_id": f"trig-{uuid.uuid4().hex[:6]}",
            "response_url": response_url,
            "token": "legacy",
        }
    )


def click(
    action: str,
    value: str,
    user: str,
    message_ts: str,
    channel: str = "C1",
    *,
    response_url: str = NOWHERE,
) -> str:
    payload = {
        "type": "block_actions",
        "user": {"id": user},
        "team": {"id": "T1"},
        "api_app_id": "A1",
        "trigger_id": "t",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel},
        "channel": {"id": channel},
        "message": {"ts": message_ts, "text": "approval"},
        "response_url": response_url,
        "actions": [
            {
                "action_id": action,
                "value": value,
                "type": "button",
                "block_id": "b",
                "action_ts": "1",
            }
        ],
    }
    return urllib.parse.urlencode({"payload": json.dumps(payload)})


class Harness:
    def __init__(self, fake: FakeSlack, bot: SlackBot, url: str, home: Path) -> None:
        self.fake, self.bot, self.url, self.home = fake, bot, url, home

    async def post(self, body: str, headers: dict[str, str]) -> tuple[int, str, float]:
        started = time.monotonic()
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.url, data=body.encode(), headers=headers) as response,
        ):
            return response.status, await response.text(), time.monotonic() - started

    async def command(self, command: str, text: str, user: str, channel: str = "C1") -> str:
        """Send a signed slash command; its response URL is served by the fake."""
        url = self.fake.response_url()
        body = slash(command, text, user, channel, response_url=url)
        assert (await self.post(body, signed(body)))[0] == 200
        return url


@pytest.fixture
async def slack(tmp_path: Path):
    fake = await FakeSlack().start()
    home = tmp_path / "home"
    home.mkdir()
    (home / "shipbot.yml").write_text(f"admins: [slack:{ADMIN}]\n")
    dispatcher = Dispatcher.open(home)
    bot = SlackBot(dispatcher, web_client("xoxb-test", fake.base_url), signing_secret=SECRET)
    runner = await bot.serve_http("127.0.0.1", 0)
    host, port = runner.addresses[0][:2]
    yield Harness(fake, bot, f"http://{host}:{port}/slack/events", home)
    await runner.cleanup()
    await bot.client.session.close() if bot.client.session else None
    dispatcher.close()
    await fake.stop()


def add_app(
    harness: Harness, tmp_path: Path, made_apps: list[str] | None = None, approval: bool = False
) -> str:
    name = f"s{uuid.uuid4().hex[:8]}"
    folder = tmp_path / name
    shutil.copytree(EXAMPLE, folder)
    doc = yaml.safe_load((folder / "app.yml").read_text())
    doc["name"] = name
    if approval:
        doc["environments"]["production"] = {"approval": {"required": 1}}
    (folder / "app.yml").write_text(yaml.safe_dump(doc))
    if made_apps is not None:
        made_apps.append(name)
    return f"apps add {name} --path {folder}"


async def test_forged_stale_malformed_are_rejected_and_run_nothing(slack: Harness):
    body = slash("/ship", "whoami", ADMIN)
    forged = await slack.post(body, signed(body, secret="not-the-secret"))
    stale = await slack.post(body, signed(body, ts=int(time.time()) - 6 * 60))
    unsigned = await slack.post(body, {"Content-Type": "application/x-www-form-urlencoded"})
    assert [forged[0], stale[0], unsigned[0]] == [401, 401, 401]
    garbage = "payload=%7Bnot-json"
    malformed = await slack.post(garbage, signed(garbage))
    assert malformed[0] == 400
    replay = await slack.post(
        body, {**signed(body), "X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    )
    assert replay[0] == 200
    # a good request after them: once its answer (two messages) is posted, the others had
    # their turn, and none of them answered
    assert (await slack.post(body, signed(body)))[0] == 200
    posts = slack.fake.of
    posted = await until(lambda: len(posts("chat.postMessage")) >= 2 and posts("chat.postMessage"))
    assert [c.args["text"].split(" (")[0] for c in posted] == ["you are slack:UADMIN", "table"]
    assert slack.bot.dispatcher.engine.store.audit_log() == []


async def test_slash_command_acks_fast_then_posts(slack: Harness):
    body = slash("/ship", "whoami", ADMIN)
    status, text, elapsed = await slack.post(body, signed(body))
    assert status == 200 and elapsed < 3.0
    posted = await until(lambda: slack.fake.of("chat.postMessage"))
    assert posted[0].args["channel"] == "C1"
    assert posted[0].args["text"] == f"you are slack:{ADMIN} (bootstrap admin from shipbot.yml)"


async def test_denied_and_usage_errors_are_ephemeral(slack: Harness):
    url = await slack.command("/deploy", "nosuch", "USTRANGER")
    ephemeral = await until(lambda: slack.fake.responses(url))
    assert ephemeral[0].args["response_type"] == "ephemeral"
    assert ephemeral[0].args["text"].startswith(":x: slack:USTRANGER may not deploy on nosuch/")
    url = await slack.command("/deploy", "hello;rm", "USTRANGER")
    usage = await until(lambda: slack.fake.responses(url))
    assert usage[0].args["response_type"] == "ephemeral"
    assert (
        usage[0].args["text"]
        == ":x: deploy: 'hello;rm' is not an app name (a-z, 0-9 and "
        + "'-', starting with a letter)"
    )
    assert slack.fake.of("chat.postMessage") == []
    assert slack.fake.of("chat.postEphemeral") == []


async def test_secret_modal_keeps_the_value_out_of_the_channel(slack: Harness, tmp_path: Path):
    add = add_app(slack, tmp_path)
    name = add.split()[2]
    body = slash("/ship", add, ADMIN)
    await slack.post(body, signed(body))
    await until(lambda: slack.fake.of("chat.postMessage"))
    url = await slack.command("/ship", f"secret set {name} API_TOKEN", ADMIN)
    opened = await until(lambda: slack.fake.of("views.open"))
    view = opened[0].args["view"]
    value = "tok-7d1e55aa90"
    submission = {
        "type": "view_submission",
        "user": {"id": ADMIN},
        "team": {"id": "T1"},
        "api_app_id": "A1",
        "trigger_id": "t",
        "view": {
            **view,
            "id": "V1",
            "state": {
                "values": {"secret": {"value": {"type": "plain_text_input", "value": value}}}
            },
        },
    }
    form = urllib.parse.urlencode({"payload": json.dumps(submission)})
    assert (await slack.post(form, signed(form)))[0] == 200
    # the answer goes to the asker alone, through the command's response URL
    stored = await until(
        lambda: [c for c in slack.fake.responses(url) if "API_TOKEN" in c.args["text"]]
    )
    assert stored[0].args["response_type"] == "ephemeral"
    assert "encrypted" in stored[0].args["text"]
    rows = slack.bot.dispatcher.engine.store.variables(name)
    assert [(r["key"], r["secret"]) for r in rows] == [("API_TOKEN", 1)]
    assert value not in json.dumps([c.args for c in slack.fake.calls], default=str)


async def test_rate_limit_retry_after_is_honoured(slack: Harness):
    slack.fake.failures["chat.postMessage"] = [(429, 1)]
    body = slash("/ship", "whoami", ADMIN)
    await slack.post(body, signed(body))
    calls = await until(
        lambda: len(slack.fake.of("chat.postMessage")) >= 2 and slack.fake.of("chat.postMessage")
    )
    assert calls[1].at - calls[0].at >= 1.0
    assert calls[1].args["text"].startswith("you are slack:UADMIN")


async def test_long_log_is_rate_limited_and_uploaded_whole(slack: Harness, monkeypatch):
    lines = [f"step {i:04d}: compiling module {i}" for i in range(5000)]
    clock = ManualClock(auto=True)  # the ticker's pause passes at once, counted on it
    stamps: list[float] = []
    for name in ("post", "edit"):  # the clock's time at each post and edit of the log
        call = getattr(SlackLiveLog, name)

        async def timed(self, shown: list[str], call=call) -> None:
            stamps.append(clock.monotonic())
            await call(self, shown)

        monkeypatch.setattr(SlackLiveLog, name, timed)

    async def replies():  # a build printing 2,000 lines a second for 2.5 s
        for number, line in enumerate(lines):
            if number % 100 == 0:
                clock.advance(0.05)
                await asyncio.sleep(0)
            yield Log(line)
        yield Result(True, "built")

    surface = SlackSurface(slack.bot.client, "C9", ADMIN, clock=clock)
    await Conversation(surface, "deploy big", ADMIN).show(replies())
    status, live = slack.fake.of("chat.postMessage")[:2]
    assert live.args["thread_ts"] == status.answer["ts"]
    edits = [c for c in slack.fake.of("chat.update") if c.args["ts"] == live.answer["ts"]]
    assert len(stamps) == 1 + len(edits) >= 2
    assert all(b - a >= 1.0 for a, b in zip(stamps, stamps[1:], strict=False)), stamps
    assert set(clock.slept) == {1.0}
    assert lines[-1] in edits[-1].args["text"]  # the last edit shows the end of the log
    assert all(len(c.args["text"]) <= 3000 for c in slack.fake.calls if "text" in c.args)
    assert len(slack.fake.uploads) == 1
    uploaded = next(iter(slack.fake.uploads.values())).decode().splitlines()
    assert uploaded == lines
    final = slack.fake.of("chat.update")[-1]
    assert final.args["ts"] == status.answer["ts"]
    assert final.args["text"].startswith(":white_check_mark: built")
    assert LIVE_LINES < 5000


async def test_socket_mode_envelope(slack: Harness):
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    handler = AsyncSocketModeHandler(slack.bot.app, "xapp-1-test", web_client=slack.bot.client)
    await handler.connect_async()
    try:
        payload = dict(urllib.parse.parse_qsl(slash("/ship", "whoami", ADMIN)))
        await slack.fake.envelopes.put(
            {
                "envelope_id": "env-1",
                "type": "slash_commands",
                "accepts_response_payload": True,
                "payload": payload,
            }
        )
        acks = await until(lambda: [a for a in slack.fake.acks if a.get("envelope_id")])
        assert acks[0]["envelope_id"] == "env-1"
        posted = await until(lambda: slack.fake.of("chat.postMessage"))
        assert posted[0].args["text"].startswith("you are slack:UADMIN")
    finally:
        await handler.close_async()


@pytest.mark.docker
async def test_approval_buttons_deploy_on_the_swarm(
    slack: Harness, tmp_path: Path, docker_client, made_apps
):
    add = add_app(slack, tmp_path, made_apps, approval=True)
    name = add.split()[2]
    for text in (
        add,
        f"grant slack:UBOB deployer --app {name}",
        f"grant slack:UCAROL deployer --app {name}",
    ):
        body = slash("/ship", text, ADMIN)
        await slack.post(body, signed(body))
    await until(lambda: len(slack.fake.of("chat.postMessage")) >= 3)
    slack.fake.calls.clear()

    body = slash("/deploy", name, "UBOB")
    status, _, elapsed = await slack.post(body, signed(body))
    assert status == 200 and elapsed < 3.0
    approval = (
        await until(
            lambda: [c for c in slack.fake.of("chat.postMessage") if "Approval" in c.args["text"]]
        )
    )[0]
    buttons = json.loads(json.dumps(approval.args["blocks"]))[-1]["elements"]
    request_id = buttons[0]["value"]
    approval_ts = "1700000000.999999"

    mine = click("shipbot_approve", request_id, "UBOB", approval_ts)
    await slack.post(mine, signed(mine))
    refused = await until(lambda: slack.fake.of("chat.postEphemeral"))
    assert refused[0].args["user"] == "UBOB"
    assert "someone else must approve it" in refused[0].args["text"]
    assert slack.fake.of("chat.update") == []

    theirs = click("shipbot_approve", request_id, "UCAROL", approval_ts)
    await slack.post(theirs, signed(theirs))
    done = await until(
        lambda: [
            c
            for c in slack.fake.of("chat.update")
            if c.args["ts"] == approval_ts
            and c.args["text"].startswith(":white_check_mark: " + name)
        ],
        timeout=120,
    )
    assert "is live on production" in done[0].args["text"]
    banner = slack.fake.of("chat.update")[0]
    assert (
        banner.args["text"] == f":white_check_mark: Approved by <@UCAROL>: `approve {request_id}`"
    )
    assert docker_client.api.inspect_service(f"{name}-production")["Spec"]["Name"]


def test_manifest_declares_what_the_adapter_listens_to():
    manifest = yaml.safe_load(
        (Path(__file__).resolve().parent.parent / "bot" / "slack_manifest.yml").read_text()
    )
    commands = {c["command"] for c in manifest["features"]["slash_commands"]}
    assert commands == {"/deploy", "/rollback", "/ship"}
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert {"commands", "chat:write", "channels:join", "files:write"} <= set(
        manifest["oauth_config"]["scopes"]["bot"]
    )


async def test_lines_without_a_result_close_the_status_message(slack: Harness):
    async def replies():
        for line in ("GET / 200", "GET /health 200"):
            yield Log(line)

    surface = SlackSurface(slack.bot.client, "C7", ADMIN)
    await Conversation(surface, "logs web", ADMIN).show(replies())
    status, live = slack.fake.of("chat.postMessage")
    assert live.args["text"] == "```\nGET / 200\nGET /health 200\n```"
    closing = slack.fake.of("chat.update")[-1]
    assert closing.args["ts"] == status.answer["ts"]
    assert closing.args["text"] == ":white_check_mark: `logs web`: see the thread"
    assert slack.fake.uploads == {}  # short: no file


async def test_one_approval_of_two_keeps_the_buttons(slack: Harness, tmp_path: Path):
    add = add_app(slack, tmp_path)
    name = add.split()[2]
    folder = Path(add.split("--path ")[1])
    doc = yaml.safe_load((folder / "app.yml").read_text())
    doc["environments"]["production"] = {"approval": {"required": 2}}
    (folder / "app.yml").write_text(yaml.safe_dump(doc))
    for text in (add, *(f"grant slack:{u} deployer --app {name}" for u in ("UB", "UC", "UD"))):
        body = slash("/ship", text, ADMIN)
        await slack.post(body, signed(body))
    await until(lambda: len(slack.fake.of("chat.postMessage")) >= 4)
    slack.fake.calls.clear()
    # a rollback is pinned to its release when asked for; with none there is nothing to
    # ask for, so the change held for approval here is a scale
    body = slash("/ship", f"scale {name} 2", "UB")
    await slack.post(body, signed(body))
    approval = (await until(lambda: slack.fake.of("chat.postMessage")))[0]
    request_id = approval.args["blocks"][-1]["elements"][0]["value"]
    first = click("shipbot_approve", request_id, "UC", "1700000000.555555")
    await slack.post(first, signed(first))
    noted = await until(lambda: slack.fake.of("chat.postEphemeral"))
    assert noted[0].args == {
        **noted[0].args,
        "user": "UC",
        "text": f"approval 1 of 2 recorded for {request_id}",
    }
    assert slack.fake.of("chat.update") == []  # the buttons stay for the second approver
    # the audit row is written as the request's chain ends, just after its last reply
    store = slack.bot.dispatcher.engine.store
    audit = (await until(lambda: [r for r in store.audit_log(limit=1) if r["user"] == "slack:UC"]))[
        0
    ]
    assert (audit["user"], audit["command"], audit["result"]) == (
        "slack:UC",
        f"approve {request_id}",
        "ok",
    )
    second = click("shipbot_approve", request_id, "UD", "1700000000.555555")
    await slack.post(second, signed(second))
    updates = await until(
        lambda: len(slack.fake.of("chat.update")) >= 2 and slack.fake.of("chat.update")
    )
    assert updates[0].args["text"].startswith(":white_check_mark: Approved by <@UD>")
    # the scale ran (and found nothing live to scale): shown on the approval message
    assert updates[-1].args["ts"] == "1700000000.555555"
    assert f"{name} has no live release on production: deploy it first" in updates[-1].args["text"]


# outside the bot's channels


async def test_a_public_channel_is_joined_then_posted_to(slack: Harness):
    slack.fake.not_joined.add("CPUB")
    url = await slack.command("/ship", "whoami", ADMIN, channel="CPUB")
    posted = await until(
        lambda: [c for c in slack.fake.of("chat.postMessage") if c.answer.get("ok")]
    )
    tried, joined = slack.fake.of("chat.postMessage")[0], slack.fake.of("conversations.join")
    assert tried.answer == {"ok": False, "error": "not_in_channel"}
    assert [c.args["channel"] for c in joined] == ["CPUB"]
    assert tried.at < joined[0].at < posted[0].at
    assert posted[0].args["channel"] == "CPUB"
    assert posted[0].args["text"].startswith(f"you are slack:{ADMIN}")
    assert slack.fake.responses(url) == []


async def test_a_dm_gets_the_conversation_through_the_response_url(slack: Harness):
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    slack.fake.closed.add("DPRIV")
    url = slack.fake.response_url()
    handler = AsyncSocketModeHandler(slack.bot.app, "xapp-1-test", web_client=slack.bot.client)
    await handler.connect_async()
    try:
        body = slash("/ship", "whoami", ADMIN, channel="DPRIV", response_url=url)
        await slack.fake.envelopes.put(
            {
                "envelope_id": "env-dm",
                "type": "slash_commands",
                "accepts_response_payload": True,
                "payload": dict(urllib.parse.parse_qsl(body)),
            }
        )
        answer, table = await until(
            lambda: len(slack.fake.responses(url)) >= 2 and slack.fake.responses(url)
        )
    finally:
        await handler.close_async()
    assert [answer.args["response_type"], table.args["response_type"]] == ["in_channel"] * 2
    assert answer.args["text"].startswith(f"you are slack:{ADMIN}")
    assert answer.args["blocks"][-1] == {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": INVITE}],
    }
    assert "/invite @shipbot" in INVITE and INVITE not in json.dumps(table.args)
    assert "admin" in table.args["blocks"][0]["text"]["text"]
    assert [c.answer["error"] for c in slack.fake.of("chat.postMessage")] == ["channel_not_found"]
    assert [c.answer["error"] for c in slack.fake.of("conversations.join")] == [
        "method_not_supported_for_channel_type"
    ]


async def test_lines_through_the_response_url_come_batched(slack: Harness):
    from slack_bolt.context.respond.async_respond import AsyncRespond

    slack.fake.closed.add("GPRIV")
    lines = [f"\x1b[32mstep {i:04d}\x1b[0m: compiling module {i}" for i in range(5000)]

    async def replies():
        for number, line in enumerate(lines):
            if number % 500 == 0:
                await asyncio.sleep(0.01)
            yield Log(line)
        yield Result(True, "built")

    url = slack.fake.response_url()
    surface = SlackSurface(slack.bot.client, "GPRIV", ADMIN, respond=AsyncRespond(response_url=url))
    await Conversation(surface, "deploy big", ADMIN, interval=0.05).show(replies())
    status, batch, result = slack.fake.responses(url)
    assert status.args["text"] == f":hourglass_flowing_sand: `deploy big` by <@{ADMIN}>"
    shown = batch.args["blocks"][0]["text"]["text"]
    assert shown.endswith("step 4999: compiling module 4999\n```") and "\x1b" not in shown
    kept = shown.count("\n") - 1
    assert batch.args["blocks"][1]["elements"][0]["text"] == f"the last {kept} of 5000 lines"
    assert result.args["text"].startswith(":white_check_mark: built (")
    texts = json.dumps([c.args for c in slack.fake.responses(url)])
    assert texts.count("/invite @shipbot") == 1
    assert {c.args["response_type"] for c in slack.fake.responses(url)} == {"in_channel"}
    assert slack.fake.of("chat.update") == [] and slack.fake.uploads == {}
    assert len(slack.fake.of("chat.postMessage")) == 1  # tried once, then never again


async def test_approval_in_a_private_channel_goes_through_response_urls(
    slack: Harness, tmp_path: Path
):
    add = add_app(slack, tmp_path)
    name = add.split()[2]
    folder = Path(add.split("--path ")[1])
    doc = yaml.safe_load((folder / "app.yml").read_text())
    doc["environments"]["production"] = {"approval": {"required": 2}}
    (folder / "app.yml").write_text(yaml.safe_dump(doc))
    for text in (add, *(f"grant slack:{u} deployer --app {name}" for u in ("UB", "UC", "UD"))):
        await slack.command("/ship", text, ADMIN)
    await until(lambda: len(slack.fake.of("chat.postMessage")) >= 4)
    slack.fake.closed.add("GOPS")
    slack.fake.calls.clear()

    asked = await slack.command("/ship", f"scale {name} 2", "UB", channel="GOPS")
    (approval,) = await until(lambda: slack.fake.responses(asked))
    assert approval.args["response_type"] == "in_channel"
    request_id = approval.args["blocks"][-2]["elements"][0]["value"]
    assert approval.args["blocks"][-1]["elements"][0]["text"] == INVITE

    first_url, second_url = slack.fake.response_url(), slack.fake.response_url()
    first = click(
        "shipbot_approve", request_id, "UC", "1700000000.777777", "GOPS", response_url=first_url
    )
    await slack.post(first, signed(first))
    (noted,) = await until(lambda: slack.fake.responses(first_url))
    assert noted.args["response_type"] == "ephemeral"
    assert noted.args["text"] == f"approval 1 of 2 recorded for {request_id}"
    assert noted.args["replace_original"] is False  # the buttons stay for the second approver

    second = click(
        "shipbot_approve", request_id, "UD", "1700000000.777777", "GOPS", response_url=second_url
    )
    await slack.post(second, signed(second))
    banner, lines, outcome = await until(
        lambda: len(slack.fake.responses(second_url)) >= 3 and slack.fake.responses(second_url)
    )
    assert banner.args["replace_original"] is True
    assert banner.args["text"] == f":white_check_mark: Approved by <@UD>: `approve {request_id}`"
    assert lines.args["replace_original"] is False
    assert f"running `scale {name} 2`" in lines.args["text"]
    assert outcome.args["replace_original"] is True
    assert f"{name} has no live release on production: deploy it first" in outcome.args["text"]
    assert all(not c.answer.get("ok") for c in slack.fake.calls if c.method.startswith("chat."))
