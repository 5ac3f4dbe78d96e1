"""Pure rendering of neutral replies into Slack messages (text + Block Kit), within limits.

Slack: a section's text holds at most 3,000 characters, a message at most 50 blocks.
What a reply quotes is escaped (``&``, ``<``, ``>``) before shipbot's own markup is added.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from bot.text import chunks, each_text, table_lines, tail
from commands.replies import ApprovalRequest, Failure, Index, Message, Reply, Result, Table

SECTION_LIMIT = 3000
MAX_BLOCKS = 50
APPROVE_ACTION = "shipbot_approve"
REJECT_ACTION = "shipbot_reject"
SECRET_VIEW = "shipbot_secret"  # noqa: S105 (a view id, not a password)


def code_block(lines: list[str], limit: int = SECTION_LIMIT) -> str:
    """The last lines that fit in one section as a code block (earlier ones are dropped)."""
    return "```\n" + "\n".join(tail(lines, limit - len("```\n\n```"))) + "\n```"


def section(text: str) -> dict[str, Any]:
    if len(text) > SECTION_LIMIT:
        text = text[: SECTION_LIMIT - 1] + "…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def escape(text: str) -> str:
    """Text as Slack shows it literally: ``<!channel>``, ``<@U1>`` and ``<url|label>`` from
    a commit message, an error or a log line become text, not a mention or a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_lines(lines: list[str]) -> list[str]:
    return [escape(line) for line in lines]


def render(reply: Reply) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks) for one reply, every text it carries escaped."""
    return _render(each_text(reply, escape))


def result_blocks(result: Result, duration_hint: str = "") -> tuple[str, list[dict[str, Any]]]:
    return _result_blocks(each_text(result, escape), duration_hint)


def _render(reply: Reply) -> tuple[str, list[dict[str, Any]]]:
    if isinstance(reply, Message):
        return reply.text, [section(part) for part in _split(reply.text)][:MAX_BLOCKS]
    if isinstance(reply, Index):
        head = [section(f"*{reply.title}*")] if reply.title else []
        rows = [section(f"*{name}*\n{items}") for name, items in reply.rows]
        tail = [{"type": "context", "elements": [{"type": "mrkdwn", "text": reply.note}]}]
        return reply.title or "index", (head + rows)[: MAX_BLOCKS - 1] + tail * bool(reply.note)
    if isinstance(reply, Table):
        groups = chunks(table_lines(reply), SECTION_LIMIT - 8)
        blocks = ([section(f"*{reply.title}*")] if reply.title else []) + [
            section("```\n" + "\n".join(group) + "\n```") for group in groups
        ]
        return reply.title or "table", blocks[:MAX_BLOCKS]
    if isinstance(reply, Result):
        return _result_blocks(reply)
    if isinstance(reply, Failure):
        text = f":x: {reply.message}"
        blocks = [section(text)]
        if reply.usage:
            blocks.append(section(f"usage: `{reply.usage}`"))
        if reply.log_tail:
            blocks.append(section(code_block(list(reply.log_tail))))
        return text, blocks
    if isinstance(reply, ApprovalRequest):
        return approval_blocks(reply)
    text = getattr(reply, "text", str(reply))
    return text, [section(text)]


def _result_blocks(result: Result, duration_hint: str = "") -> tuple[str, list[dict[str, Any]]]:
    mark = ":white_check_mark:" if result.ok else ":x:"
    text = f"{mark} {result.title}{duration_hint}"
    blocks = [section(text)]
    if result.details:
        blocks.append(section("\n".join(result.details)))
    if result.fields:
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": f"*{k}*\n{v}"[:2000]}
                    for k, v in list(result.fields.items())[:10]
                ],
            }
        )
    if result.log_tail:
        blocks.append(section(code_block(list(result.log_tail))))
    return text, blocks


def approval_blocks(request: ApprovalRequest) -> tuple[str, list[dict[str, Any]]]:
    expires = dt.datetime.fromtimestamp(request.expires_at, dt.UTC).strftime("%H:%M UTC")
    text = f":hourglass: Approval {request.id}: {request.summary}"
    blocks = [section(text)]
    if request.details:
        blocks.append(section(code_block(list(request.details))))
    blocks.append(
        context(
            f"needs {request.required} of {', '.join(request.approvers)}, not the "
            f"requester · expires {expires}"
        )
    )
    blocks.append(
        {
            "type": "actions",
            "block_id": f"approval-{request.id}",
            "elements": [
                {
                    "type": "button",
                    "action_id": APPROVE_ACTION,
                    "style": "primary",
                    "text": {"type": "plain_text", "text": "Approve"},
                    "value": str(request.id),
                },
                {
                    "type": "button",
                    "action_id": REJECT_ACTION,
                    "style": "danger",
                    "text": {"type": "plain_text", "text": "Reject"},
                    "value": str(request.id),
                },
            ],
        }
    )
    return text, blocks


def _split(text: str) -> list[str]:
    return ["\n".join(group) for group in chunks(text.splitlines() or [""], SECTION_LIMIT - 8)]


def context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def secret_modal(text: str, channel: str, response_url: str | None = None) -> dict[str, Any]:
    """A form whose input never reaches the channel; the command's response URL rides along
    so the answer reaches the asker wherever they typed it."""
    return {
        "type": "modal",
        "callback_id": SECRET_VIEW,
        "private_metadata": json.dumps(
            {"text": text, "channel": channel, "response_url": response_url}
        ),
        "title": {"type": "plain_text", "text": "shipbot secret"},
        "submit": {"type": "plain_text", "text": "Store"},
        "blocks": [
            section(f"`{text}`: the value is encrypted at rest and never posted."),
            {
                "type": "input",
                "block_id": "secret",
                "label": {"type": "plain_text", "text": "Value"},
                "element": {"type": "plain_text_input", "action_id": "value"},
            },
        ],
    }
