"""Discord adapter (discord.py application commands): the same control plane in a guild.

It only translates: interactions become ``ChatRequest``s for the dispatcher, and an
``InteractionSurface`` carries out a ``bot.conversation.Conversation``'s calls as messages,
embeds, threads and files. Typed options are read one by one by the grammar's parsers, never
joined into text. Every command defers first (Discord's 3 s), then follows up. Approval
buttons are dynamic items whose custom_id carries the request id, so they work after a
restart with nothing to re-register. shipbot's own grants decide who may do what; Discord's
command permissions are only a hint.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import discord
from discord import app_commands

from bot.conversation import Conversation, Lines, Surface, decide, tell_privately
from bot.discord_commands import install
from bot.discord_render import (
    approval_embed,
    code_tail,
    index_embed,
    message_texts,
    neutralise_lines,
    result_embed,
)
from bot.livelog import LiveLog
from bot.text import without_ansi
from commands.dispatch import Dispatcher
from commands.grammar import PARSERS, UsageError, render
from commands.registry import load_all
from commands.replies import USAGE, ApprovalRequest, Failure, Followup, Index, Reply, Result
from commands.request import ChatRequest, needs_secret
from core.clock import SYSTEM, Clock

log = logging.getLogger("shipbot.discord")
PLATFORM = "discord"
FOLLOWUP_TTL = 14 * 60.0  # interaction tokens last 15 minutes; switch to channel messages before


class DiscordLiveLog(LiveLog):
    """The live log as one message in the thread, and the whole log as an attachment."""

    def __init__(
        self,
        target: discord.abc.Messageable,
        title: str,
        interval: float,
        clock: Clock = SYSTEM,
    ) -> None:
        self.target = target
        self.message: discord.Message | None = None
        super().__init__(title, interval, clock)

    async def post(self, lines: list[str]) -> None:
        self.message = await self.target.send(code_tail(neutralise_lines(lines)))

    async def edit(self, lines: list[str]) -> None:
        assert self.message is not None
        await self.message.edit(content=code_tail(neutralise_lines(lines)))

    async def upload(self, filename: str, data: bytes, comment: str) -> None:
        await self.target.send(comment, file=discord.File(io.BytesIO(data), filename=filename))


class InteractionSurface(Surface):
    """One conversation's Discord calls: follow-ups of an interaction while its token lives,
    channel messages after; the status message's thread for the lines."""

    def __init__(
        self,
        interaction: discord.Interaction,
        *,
        followup_ttl: float = FOLLOWUP_TTL,
        status: discord.Message | None = None,
    ) -> None:
        self.interaction, self.followup_ttl = interaction, followup_ttl
        self.status = status
        self.own_status = False
        self.started = time.monotonic()

    def _token_fresh(self) -> bool:
        return time.monotonic() - self.started < self.followup_ttl

    async def send(self, content: str | None = None, **kwargs: Any) -> discord.Message:
        """A follow-up while the interaction token lives, a channel message after."""
        if self._token_fresh():
            return await self.interaction.followup.send(content=content, wait=True, **kwargs)
        channel = self.interaction.channel
        assert channel is not None
        return await channel.send(content=content, **kwargs)

    async def _edit_status(self, **kwargs: Any) -> None:
        assert self.status is not None
        if self._token_fresh() and self.own_status:
            await self.interaction.followup.edit_message(self.status.id, **kwargs)
        else:
            await self.status.edit(**kwargs)

    async def post_status(self, text: str, user: str) -> None:
        self.status = await self.send(f"⏳ `{text}` by <@{user}>")
        self.own_status = True

    async def finish_status(self, reply: Result | Failure, took: float) -> bool:
        if isinstance(reply, Result):
            embed, overflow = result_embed(reply)
            embed.set_footer(text=f"{took:.0f}s")
            await self._edit_status(content=None, embed=embed)
            if overflow:
                await attach(self.send, overflow, "details.txt")
            return True
        texts = message_texts(reply)
        if len(texts) != 1:
            return False
        await self._edit_status(content=texts[0])
        return True

    async def point_to_thread(self, text: str) -> None:
        await self._edit_status(content=f"✅ `{text}`: see the thread")

    async def decided(self, verb: str, user: str, text: str) -> None:
        verdict = "✅ Approved" if verb == "approve" else "⛔ Rejected"
        await self.interaction.response.edit_message(
            content=f"{verdict} by <@{user}>: `{text}`", view=None
        )

    async def open_log(self, title: str, interval: float) -> Lines:
        assert self.status is not None
        target: discord.abc.Messageable | None
        try:
            target = await self.status.create_thread(name=title[:90] or "shipbot")
        except (discord.HTTPException, ValueError):  # ValueError: no guild (a DM) to hold one
            log.warning("cannot open a thread for %r; lines go to the channel", title)
            target = self.interaction.channel
        assert target is not None
        return DiscordLiveLog(target, title, interval)

    async def say(self, reply: Reply) -> None:
        await send_reply(self.send, reply, footer=f"{time.monotonic() - self.started:.0f}s")

    async def whisper(self, reply: Reply) -> None:
        # whispers come first in an interaction (refusals, a click's verdict), well within
        # its token's life; after a public defer Discord shows the first follow-up in its place
        texts = (
            [("✅ " if reply.ok else "❌ ") + reply.title]
            if isinstance(reply, Result)
            else message_texts(reply)
        )
        for text in texts:
            if self.interaction.response.is_done():
                await self.interaction.followup.send(text, ephemeral=True)
            else:
                await self.interaction.response.send_message(text, ephemeral=True)


class Decision(
    discord.ui.DynamicItem[discord.ui.Button],
    template=r"shipbot:(?P<verb>approve|reject):(?P<id>\d+)",
):  # noqa: E501
    """An Approve or Reject button; the custom_id carries the request, so it survives restarts."""

    def __init__(self, verb: str, request_id: int) -> None:
        style = discord.ButtonStyle.success if verb == "approve" else discord.ButtonStyle.danger
        super().__init__(
            discord.ui.Button(
                label=verb.capitalize(), style=style, custom_id=f"shipbot:{verb}:{request_id}"
            )
        )
        self.verb, self.request_id = verb, request_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str]
    ) -> Decision:
        return cls(match["verb"], int(match["id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        bot: DiscordBot = interaction.client.shipbot  # type: ignore[attr-defined]
        text = f"{self.verb} {self.request_id}"
        assert interaction.message is not None
        surface = InteractionSurface(
            interaction, followup_ttl=bot.followup_ttl, status=interaction.message
        )
        replies = bot.request(interaction, text, surface=surface)
        user = str(interaction.user.id)
        await decide(surface, self.verb, text, user, replies, interval=bot.interval)


def approval_view(request_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(Decision("approve", request_id))
    view.add_item(Decision("reject", request_id))
    return view


class SecretForm(discord.ui.Modal, title="shipbot secret"):
    value: discord.ui.TextInput = discord.ui.TextInput(
        label="Value (never posted)", style=discord.TextStyle.short
    )

    def __init__(self, bot: DiscordBot, text: str) -> None:
        super().__init__(timeout=600)
        self.bot, self.text = bot, text

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        replies = self.bot.request(interaction, self.text, secret=self.value.value)
        await tell_privately(InteractionSurface(interaction), replies)


class DiscordBot:
    """The client, its command tree and the dispatcher behind them."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        guild_id: int | None = None,
        interval: float = 1.0,
        followup_ttl: float = FOLLOWUP_TTL,
        api_base: str | None = None,
    ) -> None:
        if api_base:  # a proxy, or a local fake in tests: the library has one base for all
            discord.http.Route.BASE = api_base.rstrip("/")
        self.dispatcher, self.guild_id = dispatcher, guild_id
        self.interval, self.followup_ttl = interval, followup_ttl
        self.client = discord.Client(
            intents=discord.Intents.default(), allowed_mentions=discord.AllowedMentions.none()
        )
        self.client.shipbot = self  # type: ignore[attr-defined]
        self.client.setup_hook = self._setup_hook  # type: ignore[method-assign]
        self.tree = app_commands.CommandTree(self.client)
        self._commands()

    async def _setup_hook(self) -> None:
        self.client.add_dynamic_items(Decision)

    def request(
        self,
        interaction: discord.Interaction,
        text: str,
        secret: str | None = None,
        surface: InteractionSurface | None = None,
    ) -> AsyncIterator[Reply]:
        """The dispatcher's replies; ``surface`` names the message that shows them, for the
        dispatcher's anchor step (a deploy's guard edits it and answers under it)."""

        def shown_at() -> str | None:
            status = surface.status if surface is not None else None
            return str(status.id) if status is not None else None

        user, channel = str(interaction.user.id), str(interaction.channel_id)
        return self.dispatcher.handle(
            ChatRequest(PLATFORM, user, channel, text, secret, shown_at=shown_at)
        )

    async def run_text(self, interaction: discord.Interaction, text: str) -> None:
        if needs_secret(text):
            await interaction.response.send_modal(SecretForm(self, text))
            return
        await interaction.response.defer(thinking=True)
        surface = InteractionSurface(interaction, followup_ttl=self.followup_ttl)
        conv = Conversation(surface, text, str(interaction.user.id), interval=self.interval)
        await conv.show(self.request(interaction, text, surface=surface))

    async def run_options(
        self, interaction: discord.Interaction, name: str, options: dict[str, Any]
    ) -> None:
        """A command from typed options: each value is checked on its own, so no value can
        turn into a flag or a second argument; a bad one is refused and nothing runs."""
        try:
            text = options_text(name, options)
        except UsageError as exc:
            refusal = Failure(str(exc), USAGE, exc.usage)
            await InteractionSurface(interaction).whisper(refusal)
            return
        await self.run_text(interaction, text)

    async def app_names(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        names = self.dispatcher.visible_apps(f"{PLATFORM}:{interaction.user.id}")
        return [app_commands.Choice(name=n, value=n) for n in names if current in n][:25]

    def _commands(self) -> None:
        """Every catalog command from its grammar (``bot.discord_commands``), and ``/ship``
        for any command typed as text."""
        install(self.tree, self.run_options, self.app_names)

        @self.tree.command(name="ship", description="Any shipbot command: help, status, logs…")
        async def ship(interaction: discord.Interaction, command: str) -> None:
            await self.run_text(interaction, command)

    async def sync_commands(self) -> list[app_commands.AppCommand]:
        """Publish the commands, to one guild (instant) or globally; run on purpose, not on
        every start (`shipbot discord sync`)."""
        guild = discord.Object(id=self.guild_id) if self.guild_id else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        return await self.tree.sync(guild=guild)

    async def deliver(self, channel_id: str, reply: Reply) -> None:
        """Post a neutral reply to a channel (the outbox's ``send`` for Discord)."""
        channel = self.client.get_channel(int(channel_id)) or await self.client.fetch_channel(
            int(channel_id)
        )
        assert isinstance(channel, discord.abc.Messageable)
        reply = without_ansi(reply)
        if isinstance(reply, Followup) and reply.anchor and hasattr(channel, "get_partial_message"):
            # a later word on a deploy this chat shows: edit its message, answer under it
            shown = channel.get_partial_message(int(reply.anchor))
            embed, _ = result_embed(reply)
            await shown.edit(content=None, embed=embed)
            await send_reply(functools.partial(channel.send, reference=shown), reply)
            return
        await send_reply(channel.send, reply)


async def send_reply(
    send: Callable[..., Awaitable[discord.Message]], reply: Reply, footer: str | None = None
) -> None:
    """A reply as messages and embeds through ``send``; what an embed cannot hold, as a file."""
    if isinstance(reply, Result):
        embed, overflow = result_embed(reply)
        if footer:
            embed.set_footer(text=footer)
        await send(embed=embed)
        if overflow:
            await attach(send, overflow, "details.txt")
    elif isinstance(reply, ApprovalRequest):
        embed, overflow = approval_embed(reply)
        await send(embed=embed, view=approval_view(reply.id))
        if overflow:
            await attach(send, overflow, "plan.txt")
    elif isinstance(reply, Index):
        embed, overflow = index_embed(reply)
        await send(embed=embed)
        if overflow:
            await attach(send, overflow, "commands.txt")
    else:
        for text in message_texts(reply):
            await send(text)


async def attach(
    send: Callable[..., Awaitable[discord.Message]], lines: list[str], filename: str
) -> None:
    data = ("\n".join(lines) + "\n").encode()
    await send("the rest, in full:", file=discord.File(io.BytesIO(data), filename))


def options_text(name: str, options: dict[str, Any]) -> str:
    """The command text for ``name`` with typed option values, each read by the grammar's
    own parser for its field (``UsageError`` naming the option), then rendered canonically."""
    spec = load_all()[name]
    values: dict[str, Any] = {}
    for field in dataclasses.fields(spec.request):
        value = options.get(field.name)
        if value is None:
            continue
        kind = field.metadata["kind"]
        if kind == "flag":
            values[field.name] = bool(value)
            continue
        try:
            values[field.name] = PARSERS[kind](str(value))
        except ValueError as exc:
            raise UsageError(f"{name}: option {field.name}: {exc}", spec.usage) from exc
    return render(spec.request(**values))
