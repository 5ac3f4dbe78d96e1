"""A chat request as it arrives, and what every step needs to know about it: the app and
environment it is about, whether it needs a secret typed outside the channel, and how its
replies are masked."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from commands.grammar import UsageError, parse, spec_of
from core.config.parts import DEFAULT_ENV


@dataclass(frozen=True)
class ChatRequest:
    """A message from any chat: who (immutable platform id), where, and what they typed.

    ``secret`` carries a value entered outside the channel (a prompt or a modal).
    ``shown_at`` is the adapter's answer, once the replies are shown, to "which message
    shows them?" (a Slack ts, a Discord message id; None when none): the dispatcher's anchor
    step remembers it for a deploy's guard.
    """

    platform: str
    user: str
    channel: str
    text: str
    secret: str | None = None
    shown_at: Callable[[], str | None] | None = field(default=None, compare=False, repr=False)

    @property
    def identity(self) -> str:
        return self.user if ":" in self.user else f"{self.platform}:{self.user}"


def stop_children() -> int:
    """Kill the child processes (git) running for any command: a CLI leaving on a signal.
    A process that never loaded the git module (core/apps/sources.py) started none."""
    sources = sys.modules.get("core.apps.sources")
    return sources.kill_children() if sources is not None else 0


def needs_secret(text: str) -> str | None:
    """The prompt to show when the text asks for a value that must not go into the channel."""
    try:
        request = parse(text)
    except UsageError:
        return None
    name = spec_of(request).name  # by name: a family's module loads only when it runs
    if name == "secret set":
        return f"value of {request.key} for {request.app} (not echoed): "
    if name in ("webhook secret", "webhook token"):
        what = "secret" if name == "webhook secret" else "forge token"
        return f"webhook {what} of {request.app} (not echoed): "
    if name == "ssh-key" and request.action == "import":
        return f"private key {request.key}, unencrypted, as one paste (not echoed): "
    return None


def describe(request: Any) -> tuple[str | None, str | None]:
    """The app and environment a request is about: for permissions, locks and the audit.

    A command with an --env option that was not given acts on the default environment,
    or on every one (None) where the command's ``default_env`` says so.
    """
    app = (
        getattr(request, "app", None)
        or getattr(request, "name", None)
        or getattr(request, "to_app", None)  # db attach/detach: the audit of the app names it
    )
    if not hasattr(request, "env"):
        return app, None
    # `apps remove APP` without --env is about every environment (``default_env`` None)
    return app, request.env or getattr(request, "default_env", DEFAULT_ENV)
