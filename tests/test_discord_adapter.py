"""The Discord adapter driven by real interaction payloads against a local fake REST API."""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import discord
import pytest
import yaml

from bot.discord_adapter import DiscordBot, DiscordLiveLog
from bot.discord_render import (
    DESCRIPTION_LIMIT,
    EMBED_LIMIT,
    FIELD_VALUE_LIMIT,
    FIELDS_LIMIT,
    TITLE_LIMIT,
    fit_embed,
    split_message,
)
from bot.livelog import LIVE_LINES, LiveLog
from commands.dispatch import ChatRequest, Dispatcher
from commands.grammar import REGISTRY
from commands.replies import Result
from tests.clock import ManualClock
from tests.fake_discord_api import (
    APP_ID,
    CHANNEL_ID,
    GUILD_ID,
    FakeDiscord,
    message_json,
    user,
)

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "hello"
ADMIN = "800000000000000001"
IDS = itertools.count(820000000000000000)


async def until(check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.05)
    return value


def base_payload(user_id: str, kind: int, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(next(IDS)),
        "application_id": APP_ID,
        "type": kind,
        "token": f"tok-{uuid.uuid4().hex[:8]}",
        "version": 1,
        "attachment_size_limit": 8_388_608,
        "guild_id": GUILD_ID,
        "channel_id": CHANNEL_ID,
        "channel": {
            "id": CHANNEL_ID,
            "type": 0,
            "name": "deploys",
            "position": 0,
            "guild_id": GUILD_ID,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
        },
        "member": {
            "user": user(user_id, f"u{user_id[-3:]}"),
            "roles": [],
            "joined_at": "2026-01-01T00:00:00+00:00",
            "flags": 0,
            "permissions": "0",
            "deaf": False,
            "mute": False,
        },
        "locale": "en-US",
        "guild_locale": "en-US",
        "entitlements": [],
        "context": 0,
        "authorizing_integration_owners": {"0": GUILD_ID},
        "data": data,
    }


def slash(name: str, user_id: str, **options: Any) -> dict[str, Any]:
    kinds = {str: 3, int: 4, bool: 5}
    return base_payload(
        user_id,
        2,
        {
            "id": str(next(IDS)),
            "name": name,
            "type": 1,
            "options": [
                {"name": k, "type": kinds[type(v)], "value": v} for k, v in options.items()
            ],
        },
    )


def click(custom_id: str, user_id: str, message_id: str) -> dict[str, Any]:
    payload = base_payload(user_id, 3, {"custom_id": custom_id, "component_type": 2})
    components = [
        {
            "type": 1,
            "components": [{"type": 2, "style": 3, "label": "Approve", "custom_id": custom_id}],
        }
    ]
    payload["message"] = message_json(message_id, CHANNEL_ID, {"components": components})
    return payload


class Harness:
    def __init__(self, fake: FakeDiscord, home: Path) -> None:
        self.fake, self.home = fake, home
        self.dispatcher: Dispatcher | None = None
        self.bot: DiscordBot | None = None

    async def boot(self, followup_ttl: float = 14 * 60) -> DiscordBot:
        """(Re)start the bot process: a new dispatcher on the same home, a new client."""
        await self.shutdown()
        self.dispatcher = Dispatcher.open(self.home)
        self.bot = DiscordBot(self.dispatcher, interval=0.2, followup_ttl=followup_ttl)
        await self.bot.client.login("fake-token")
        return self.bot

    def dispatch(self, payload: dict[str, Any]) -> None:
        assert self.bot is not None
        self.bot.client._connection.parsers["INTERACTION_CREATE"](payload)

    def followups(self, token: str) -> list[Any]:
        return [c for c in self.fake.calls if c.path.startswith(f"/webhooks/{APP_ID}/{token}")]

    async def shutdown(self) -> None:
        if self.bot is not None:
            await self.bot.client.close()
        if self.dispatcher is not None:
            self.dispatcher.close()


@pytest.fixture
async def harness(tmp_path: Path, monkeypatch):
    fake = await FakeDiscord().start()
    monkeypatch.setattr(discord.http.Route, "BASE", fake.base)
    home = tmp_path / "home"
    home.mkdir()
    (home / "shipbot.yml").write_text(f"admins: [discord:{ADMIN}]\n")
    harness = Harness(fake, home)
    await harness.boot()
    yield harness
    await harness.shutdown()
    await fake.stop()


async def test_ship_defers_then_follows_up(harness: Harness):
    payload = slash("ship", ADMIN, command="whoami")
    harness.dispatch(payload)
    followups = await until(lambda: harness.followups(payload["token"]))
    callback = harness.fake.of("POST", f"/interactions/{payload['id']}/")[0]
    assert callback.body == {"type": 5}  # deferred, thinking
    assert callback.at <= followups[0].at
    assert followups[0].body["content"] == (
        f"you are discord:{ADMIN} (bootstrap admin from shipbot.yml)"
    )


async def test_denied_user_changes_nothing(harness: Harness):
    payload = slash("deploy", "700", app="shop", env="production")
    harness.dispatch(payload)
    followups = await until(lambda: harness.followups(payload["token"]))
    assert followups[0].body["content"].startswith("❌ discord:700 may not deploy on shop/")
    # the audit row is written as the request's chain ends, just after its last reply
    audit = await until(lambda: harness.dispatcher.engine.store.audit_log())
    assert [(a["user"], a["result"]) for a in audit] == [("discord:700", "denied")]
    assert harness.dispatcher.engine.store.db["releases"].count == 0


async def test_secret_form_keeps_the_value_out(harness: Harness, tmp_path: Path):
    folder = tmp_path / "shop"
    folder.mkdir()
    (folder / "app.yml").write_text("name: shop\nimage: shop:1\n")
    await harness.dispatcher.run(
        ChatRequest("discord", ADMIN, CHANNEL_ID, f"apps add shop --path {folder}")
    )
    payload = slash("ship", ADMIN, command="secret set shop API_TOKEN")
    harness.dispatch(payload)
    modal = await until(lambda: harness.fake.of("POST", f"/interactions/{payload['id']}/"))
    assert modal[0].body["type"] == 9  # a modal, not a message
    custom_id = modal[0].body["data"]["custom_id"]
    text_id = modal[0].body["data"]["components"][0]["components"][0]["custom_id"]
    value = "tok-51c0ffee77"
    submit = base_payload(
        ADMIN,
        5,
        {
            "custom_id": custom_id,
            "components": [
                {"type": 1, "components": [{"type": 4, "custom_id": text_id, "value": value}]}
            ],
        },
    )
    harness.dispatch(submit)
    answers = await until(
        lambda: [c for c in harness.followups(submit["token"]) if "API_TOKEN" in json.dumps(c.body)]
    )
    assert "encrypted" in answers[0].body["content"]
    assert value not in json.dumps([c.body for c in harness.fake.calls])
    rows = harness.dispatcher.engine.store.variables("shop")
    assert [(r["key"], r["secret"]) for r in rows] == [("API_TOKEN", 1)]


def test_split_message_at_the_limit():
    exact = "x" * 2000
    assert split_message(exact) == [exact]
    lines = ["a" * 999, "b" * 1000, "c"]  # 999 + 1 + 1000 = 2000, then one more line
    assert split_message("\n".join(lines)) == ["a" * 999 + "\n" + "b" * 1000, "c"]
    long = "z" * 4500
    parts = split_message(long)
    assert [len(p) for p in parts] == [2000, 2000, 500] and "".join(parts) == long


def test_embed_exactly_at_and_over_each_limit():
    title = "t" * TITLE_LIMIT
    embed, overflow = fit_embed(title, ["d" * DESCRIPTION_LIMIT], {}, 0)
    assert embed.title == title and len(embed.description) == DESCRIPTION_LIMIT
    assert overflow == []
    embed, overflow = fit_embed(title + "!", ["d" * DESCRIPTION_LIMIT, "more"], {}, 0)
    assert len(embed.title) == TITLE_LIMIT and embed.title.endswith("…")
    assert overflow == [f"title: {title}!", "more"]
    fields = {f"f{i:02d}": "v" * 10 for i in range(FIELDS_LIMIT + 1)}
    embed, overflow = fit_embed("x", [], fields, 0)
    assert len(embed.fields) == FIELDS_LIMIT and overflow == [f"f{FIELDS_LIMIT}: " + "v" * 10]
    big = {"k": "v" * (FIELD_VALUE_LIMIT + 1)}
    embed, overflow = fit_embed("x", [], big, 0)
    assert len(embed.fields[0].value) == FIELD_VALUE_LIMIT and overflow == [
        "k: " + "v" * (FIELD_VALUE_LIMIT + 1)
    ]
    many = {f"name{i}": "v" * FIELD_VALUE_LIMIT for i in range(FIELDS_LIMIT)}
    embed, overflow = fit_embed("x", ["line"] * 10, many, 0)
    assert len(embed) <= EMBED_LIMIT
    assert len(embed.fields) + sum(1 for o in overflow if o.startswith("name")) == FIELDS_LIMIT
    assert overflow.count("line") + (embed.description or "").count("line") == 10


def shown_at(live: LiveLog, clock: ManualClock) -> list[float]:
    """The clock's time at each post and edit of ``live``'s message, in order."""
    stamps: list[float] = []
    for name in ("post", "edit"):
        call = getattr(live, name)

        async def timed(lines: list[str], call=call) -> None:
            stamps.append(clock.monotonic())
            await call(lines)

        setattr(live, name, timed)
    return stamps


async def test_live_log_rate_and_whole_file(harness: Harness):
    channel = await harness.bot.client.fetch_channel(int(CHANNEL_ID))
    clock = ManualClock(auto=True)  # the ticker's pause passes at once, counted on it
    live = DiscordLiveLog(channel, "deploy big", interval=1.0, clock=clock)
    stamps = shown_at(live, clock)
    lines = [f"step {i:04d}: compiling module {i}" for i in range(5000)]
    for number, line in enumerate(lines):
        if number % 100 == 0:  # a build printing 2,000 lines a second
            clock.advance(0.05)
            await asyncio.sleep(0)
        live.add(line)
    await live.close()
    sends = harness.fake.of("POST", f"/channels/{CHANNEL_ID}/messages")
    last = sends[-1]
    edits = harness.fake.of("PATCH", f"/channels/{CHANNEL_ID}/messages/")
    assert len(stamps) == 1 + len(edits) >= 2
    assert all(b - a >= 1.0 for a, b in zip(stamps, stamps[1:], strict=False)), stamps
    assert set(clock.slept) == {1.0}
    assert all(len(c.body.get("content") or "") <= 2000 for c in harness.fake.calls)
    assert lines[-1] in edits[-1].body["content"]
    (data,) = last.files.values()
    assert data.decode().splitlines() == lines and len(lines) > LIVE_LINES


def add_app_yml(tmp_path: Path) -> tuple[str, Path]:
    name = f"d{uuid.uuid4().hex[:8]}"
    folder = tmp_path / name
    shutil.copytree(EXAMPLE, folder)
    doc = yaml.safe_load((folder / "app.yml").read_text())
    doc["name"] = name
    doc["environments"]["production"] = {"approval": {"required": 1}}
    (folder / "app.yml").write_text(yaml.safe_dump(doc))
    return name, folder


@pytest.mark.docker
async def test_approval_buttons_survive_a_restart_and_deploy(
    harness: Harness, tmp_path: Path, docker_client, made_apps
):
    name, folder = add_app_yml(tmp_path)
    made_apps.append(name)
    bob, carol = "800000000000000002", "800000000000000003"
    for text in (
        f"apps add {name} --path {folder}",
        f"grant discord:{bob} deployer --app {name}",
        f"grant discord:{carol} deployer --app {name}",
    ):
        payload = slash("ship", ADMIN, command=text)
        harness.dispatch(payload)
        await until(lambda p=payload: harness.followups(p["token"]))

    asked = slash("deploy", bob, app=name)
    harness.dispatch(asked)
    approval = (
        await until(
            lambda: [c for c in harness.followups(asked["token"]) if c.body.get("components")]
        )
    )[0]
    buttons = approval.body["components"][0]["components"]
    assert [b["custom_id"] for b in buttons][0].startswith("shipbot:approve:")
    assert approval.body["embeds"][0]["title"].startswith("⏳ approval ")
    approve_id = buttons[0]["custom_id"]

    own = click(approve_id, bob, "830000000000000001")
    harness.dispatch(own)
    refused = await until(lambda: harness.fake.of("POST", f"/interactions/{own['id']}/"))
    assert refused[0].body["type"] == 4 and refused[0].body["data"]["flags"] == 64
    assert "someone else must approve it" in refused[0].body["data"]["content"]

    await harness.boot()  # the process restarts; the button still resolves the request
    theirs = click(approve_id, carol, "830000000000000001")
    harness.dispatch(theirs)
    edited = await until(lambda: harness.fake.of("POST", f"/interactions/{theirs['id']}/"))
    assert edited[0].body["type"] == 7
    assert edited[0].body["data"]["content"].startswith(f"✅ Approved by <@{carol}>")
    final = await until(
        lambda: [
            c
            for c in harness.fake.of("PATCH", f"/channels/{CHANNEL_ID}/messages/830000000000000001")
            if c.body.get("embeds")
        ],
        timeout=120,
    )
    embed = final[-1].body["embeds"][0]
    assert embed["title"] == f"✅ {name} release 1 is live on production"
    assert embed["color"] == 0x2EB67D
    assert {f["name"] for f in embed["fields"]} >= {"app", "env", "release", "duration"}
    assert docker_client.api.inspect_service(f"{name}-production")["Spec"]["Name"]


async def test_after_the_token_expires_replies_go_to_the_channel(harness: Harness):
    await harness.boot(followup_ttl=0)  # as if the command had run for 15 minutes
    payload = slash("ship", ADMIN, command="help deploy")
    harness.dispatch(payload)
    sent = await until(lambda: harness.fake.of("POST", f"/channels/{CHANNEL_ID}/messages"))
    assert sent[0].body["content"].startswith("usage: deploy APP [REF]")
    assert harness.followups(payload["token"]) == []  # no webhook call with a dead token


async def test_typed_options_are_values_never_flags(harness: Harness):
    for options, refusal in (
        (
            {"app": "shop", "env": "staging --dry-run"},
            "❌ deploy: option env: 'staging --dry-run' is not an environment name",
        ),
        ({"app": "shop", "ref": "--force"}, "❌ deploy: option ref: '--force' is not a git ref"),
    ):
        payload = slash("deploy", ADMIN, **options)
        harness.dispatch(payload)
        (answer,) = await until(
            lambda p=payload: harness.fake.of("POST", f"/interactions/{p['id']}/")
        )
        assert answer.body["type"] == 4 and answer.body["data"]["flags"] == 64  # asker only
        assert answer.body["data"]["content"].startswith(refusal)
        (usage,) = await until(lambda p=payload: harness.followups(p["token"]))
        assert usage.body["flags"] == 64
        assert usage.body["content"] == f"usage: `{REGISTRY['deploy'].usage}`"
    assert harness.dispatcher.engine.store.audit_log() == []  # nothing ran


async def test_typed_options_become_the_canonical_command(harness: Harness):
    store = harness.dispatcher.engine.store

    async def audited(count: int) -> str:
        """The newest audit row's command, once ``count`` rows are written (a reply can be
        posted before its command's audit row)."""
        await until(lambda: len(store.audit_log()) >= count)
        return store.audit_log(limit=1)[0]["command"]

    payload = slash("deploy", "700", app="shop", ref="v1.2", env="staging", dry_run=True)
    harness.dispatch(payload)
    await until(lambda: harness.followups(payload["token"]))
    assert await audited(1) == "deploy shop v1.2 --env staging --dry-run"
    payload = slash("rollback", "700", app="shop", release=3)
    harness.dispatch(payload)
    await until(lambda: harness.followups(payload["token"]))
    assert await audited(2) == "rollback shop 3"
    payload = slash("rollback", "700", app="shop", release=3, break_glass="db down --now")
    harness.dispatch(payload)
    await until(lambda: harness.followups(payload["token"]))
    assert await audited(3) == "rollback shop 3 --break-glass 'db down --now'"
    assert len(store.audit_log()) == 3


def autocomplete(user_id: str, typed: str) -> dict[str, Any]:
    return base_payload(
        user_id,
        4,
        {
            "id": str(next(IDS)),
            "name": "deploy",
            "type": 1,
            "options": [{"name": "app", "type": 3, "value": typed, "focused": True}],
        },
    )


async def test_autocomplete_lists_only_the_apps_the_user_may_see(harness: Harness, tmp_path: Path):
    bob, stranger = "800000000000000005", "800000000000000006"
    for name in ("shop", "cart"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "app.yml").write_text(f"name: {name}\nimage: {name}:1\n")
        await harness.dispatcher.run(
            ChatRequest("discord", ADMIN, CHANNEL_ID, f"apps add {name} --path {folder}")
        )
    await harness.dispatcher.run(
        ChatRequest("discord", ADMIN, CHANNEL_ID, f"grant discord:{bob} viewer --app shop")
    )

    async def choices(user_id: str) -> list[str]:
        payload = autocomplete(user_id, "")
        harness.dispatch(payload)
        (answer,) = await until(lambda: harness.fake.of("POST", f"/interactions/{payload['id']}/"))
        assert answer.body["type"] == 8
        return [c["value"] for c in answer.body["data"]["choices"]]

    assert sorted(await choices(ADMIN)) == ["cart", "shop"]
    assert await choices(bob) == ["shop"]
    assert await choices(stranger) == []


async def test_delivered_result_is_an_embed_without_escapes_and_overflow_as_a_file(
    harness: Harness,
):
    details = tuple(f"line {i:03d} " + "x" * 90 for i in range(60))  # past the embed's limit
    reply = Result(True, "shop release 2 is live", details, log_tail=("\x1b[31mred\x1b[0m",))
    await harness.bot.deliver(CHANNEL_ID, reply)
    embed_call, file_call = harness.fake.of("POST", f"/channels/{CHANNEL_ID}/messages")
    (embed,) = embed_call.body["embeds"]
    assert embed["title"] == "✅ shop release 2 is live"
    (data,) = file_call.files.values()
    shown = (embed.get("description") or "").splitlines() + data.decode().splitlines()
    assert [line for line in shown if line.startswith("line ")] == list(details)
    assert "red" in json.dumps([embed, data.decode()]) and "\x1b" not in data.decode()
    assert "\\u001b" not in json.dumps(embed)
