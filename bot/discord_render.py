"""Pure rendering of neutral replies for Discord, inside its limits, losing nothing.

Limits: a message holds 2,000 characters; an embed's title 256, description 4,096, 25
fields of name 256 and value 1,024, and 6,000 characters in all. What does not fit is
returned as overflow, which the adapter attaches as a file. What a reply quotes cannot
mention anyone or hide a link (and the client sends with no mentions allowed at all).
"""

from __future__ import annotations

import datetime as dt
import re

import discord

from bot.text import chunks, each_text, table_lines, tail
from commands.replies import ApprovalRequest, Failure, Index, Message, Reply, Result, Table

MESSAGE_LIMIT = 2000
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELDS_LIMIT = 25
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
EMBED_LIMIT = 6000
GREEN, RED, AMBER, BLUE = 0x2EB67D, 0xE01E5A, 0xECB22E, 0x1D9BD1
FENCE = len("```\n\n```")


# what Discord would turn into a ping or a disguised link: @everyone/@here, user, role and
# channel mentions, and the ](url) of a markdown link
_MARKUP = re.compile(r"@(?:everyone|here)|<(?:@[!&]?|#)(?=\d)|\]\(")
ZWSP = "\u200b"


def neutralise(text: str) -> str:
    """Text as Discord shows it literally: an invisible space after each markup opener."""
    return _MARKUP.sub(lambda found: found[0][0] + ZWSP + found[0][1:], text)


def neutralise_lines(lines: list[str]) -> list[str]:
    return [neutralise(line) for line in lines]


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Messages of at most ``limit`` characters, split on lines; nothing dropped."""
    return ["\n".join(group) for group in chunks(text.splitlines() or [""], limit)]


def code_messages(lines: list[str], limit: int = MESSAGE_LIMIT) -> list[str]:
    return ["```\n" + "\n".join(group) + "\n```" for group in chunks(lines, limit - FENCE)]


def code_tail(lines: list[str], limit: int = MESSAGE_LIMIT) -> str:
    """The latest lines that fit one message, as a code block."""
    return "```\n" + "\n".join(tail(lines, limit - FENCE)) + "\n```"


def _clip(text: str, limit: int, overflow: list[str], label: str) -> str:
    if len(text) <= limit:
        return text
    overflow.append(f"{label}: {text}")
    return text[: limit - 1] + "…"


def fit_embed(
    title: str, lines: list[str], fields: dict[str, str], color: int
) -> tuple[discord.Embed, list[str]]:
    """An embed within every limit, and the text that did not fit (nothing is lost)."""
    overflow: list[str] = []
    title = _clip(title, TITLE_LIMIT, overflow, "title")
    items = [
        (_clip(k, FIELD_NAME_LIMIT, overflow, "field"), _clip(v, FIELD_VALUE_LIMIT, overflow, k))
        for k, v in fields.items()
    ]
    for name, value in items[FIELDS_LIMIT:]:
        overflow.append(f"{name}: {value}")
    items = items[:FIELDS_LIMIT]
    budget = EMBED_LIMIT - len(title)
    while items and sum(len(k) + len(v) for k, v in items) > budget:
        name, value = items.pop()
        overflow.append(f"{name}: {value}")
    budget -= sum(len(k) + len(v) for k, v in items)
    kept: list[str] = []
    size = 0
    for number, line in enumerate(lines):
        cost = len(line) + (1 if kept else 0)
        if size + cost > min(DESCRIPTION_LIMIT, budget):
            overflow.extend(lines[number:])
            break
        kept.append(line)
        size += cost
    embed = discord.Embed(title=title, description="\n".join(kept) or None, color=color)
    for name, value in items:
        embed.add_field(name=name, value=value, inline=True)
    return embed, overflow


def result_embed(result: Result) -> tuple[discord.Embed, list[str]]:
    result = each_text(result, neutralise)
    lines = list(result.details)
    if result.log_tail:
        lines += ["last log lines:", *result.log_tail]
    mark = "✅" if result.ok else "❌"
    return fit_embed(f"{mark} {result.title}", lines, result.fields, GREEN if result.ok else RED)


def approval_embed(request: ApprovalRequest) -> tuple[discord.Embed, list[str]]:
    request = each_text(request, neutralise)
    expires = dt.datetime.fromtimestamp(request.expires_at, dt.UTC).strftime("%H:%M UTC")
    fields = {
        "needs": f"{request.required} of {', '.join(request.approvers)}, not the requester",
        "expires": expires,
    }
    return fit_embed(
        f"⏳ approval {request.id}: {request.summary}", list(request.details), fields, AMBER
    )


def index_embed(index: Index) -> tuple[discord.Embed, list[str]]:
    """Each group as a field (its items on their own lines), the note as the description."""
    index = each_text(index, neutralise)
    fields = {name: items.replace(" · ", "\n") for name, items in index.rows}
    return fit_embed(index.title, [index.note] if index.note else [], fields, BLUE)


def message_texts(reply: Reply) -> list[str]:
    """Plain replies as one or more messages."""
    reply = each_text(reply, neutralise)
    if isinstance(reply, Message):
        return split_message(reply.text)
    if isinstance(reply, Table):
        head = [f"**{reply.title}**"] if reply.title else []
        return head + code_messages(table_lines(reply))
    if isinstance(reply, Failure):
        texts = split_message(f"❌ {reply.message}")
        if reply.usage:
            texts += split_message(f"usage: `{reply.usage}`")
        if reply.log_tail:
            texts += code_messages(list(reply.log_tail))
        return texts
    return split_message(getattr(reply, "text", str(reply)))
