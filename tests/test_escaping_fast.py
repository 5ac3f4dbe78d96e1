"""What a reply quotes (an error, a commit message, a log line) reaches Slack and Discord as
text: no `<!channel>`, no `@everyone`, no disguised link, for every reply kind."""

from __future__ import annotations

import json
from pathlib import Path

import discord
import pytest

from bot.discord_render import approval_embed, message_texts, result_embed
from bot.slack_render import render
from commands.replies import ApprovalRequest, Failure, Log, Message, Result, Step, Table
from tests.test_discord_adapter import ADMIN as DISCORD_ADMIN
from tests.test_discord_adapter import harness  # noqa: F401 (the fixture)
from tests.test_discord_adapter import slash as discord_slash
from tests.test_discord_adapter import until as discord_until
from tests.test_slack import ADMIN as SLACK_ADMIN
from tests.test_slack import slack, until  # noqa: F401 (the fixture)

HOSTILE = "<!channel> see <https://evil.example|the fix> [the fix](https://evil.example) @everyone"
SLACK_SAFE = (
    "&lt;!channel&gt; see &lt;https://evil.example|the fix&gt; [the fix](https://evil.example) "
    "@everyone"
)
Z = "\u200b"


def hostile_app(tmp_path: Path) -> Path:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "app.yml").write_text(f"name: mine\nimage: mine:1\nreplicas: '{HOSTILE}'\n")
    return folder


REPLIES = [
    Message(HOSTILE),
    Step(HOSTILE),
    Log(HOSTILE),
    Table(("commit", "message"), (("abc123", HOSTILE),), title=HOSTILE),
    Result(False, HOSTILE, (HOSTILE,), {HOSTILE: HOSTILE}, (HOSTILE,)),
    Failure(HOSTILE, log_tail=(HOSTILE,)),
    ApprovalRequest(7, f"deploy mine: {HOSTILE}", "console:a", ("console:b",), 1, 0.0, (HOSTILE,)),
]


@pytest.mark.parametrize("reply", REPLIES, ids=lambda r: type(r).__name__)
def test_slack_renders_every_reply_kind_escaped(reply):
    text, blocks = render(reply)
    shown = json.dumps([text, blocks])
    assert "<!channel>" not in shown and "<https://evil" not in shown
    assert "&lt;!channel&gt;" in shown


@pytest.mark.parametrize("reply", REPLIES, ids=lambda r: type(r).__name__)
def test_discord_renders_every_reply_kind_without_mentions_or_links(reply):
    if isinstance(reply, Result):
        embed, overflow = result_embed(reply)
        shown = json.dumps([embed.to_dict(), overflow])
    elif isinstance(reply, ApprovalRequest):
        embed, overflow = approval_embed(reply)
        shown = json.dumps([embed.to_dict(), overflow])
    else:
        shown = json.dumps(message_texts(reply))
    assert "@everyone" not in shown and "](https://" not in shown
    assert "@\\u200beveryone" in shown and "]\\u200b(https://" in shown


async def test_slack_receives_an_error_quoting_markup_escaped(slack, tmp_path):  # noqa: F811
    folder = hostile_app(tmp_path)
    url = await slack.command("/ship", f"apps add mine --path {folder}", SLACK_ADMIN)
    answered = await until(
        lambda: [c for c in slack.fake.calls if "whole number" in json.dumps(c.args)], 20
    )
    sent = json.dumps([call.args for call in slack.fake.calls])
    assert "<!channel>" not in sent and "<https://evil" not in sent
    assert SLACK_SAFE in answered[0].args["text"], (url, answered[0])


async def test_discord_receives_an_error_quoting_markup_neutralised(harness, tmp_path):  # noqa: F811
    assert harness.bot.client.allowed_mentions.to_dict() == discord.AllowedMentions.none().to_dict()
    folder = hostile_app(tmp_path)
    payload = discord_slash("ship", DISCORD_ADMIN, command=f"apps add mine --path {folder}")
    harness.dispatch(payload)
    followups = await discord_until(lambda: harness.followups(payload["token"]))
    content = followups[0].body["content"]
    assert "replicas: expected a whole number" in content
    assert f"@{Z}everyone" in content and f"]{Z}(https://evil.example)" in content
    assert "@everyone" not in content and "](https" not in content
