"""One path for every platform: text in, parsed, run, audited, replies out."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from commands import catalog
from commands.grammar import UsageError, parse, spec_of
from commands.replies import FAILED, INTERNAL, USAGE, Failure, Reply, Result
from core.engine import Engine
from core.errors import BuildError, CoreError
from core.store import Store

log = logging.getLogger("shipbot.commands")


@dataclass(frozen=True)
class ChatRequest:
    """A message from any chat: who (immutable platform id), where, and what they typed."""

    platform: str
    user: str
    channel: str
    text: str

    @property
    def identity(self) -> str:
        return self.user if ":" in self.user else f"{self.platform}:{self.user}"


class Dispatcher:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, home: Path | None = None) -> Dispatcher:
        """The control plane on this host: the store under ``home`` and the local engine."""
        store = Store(home / "shipbot.db" if home else None)
        engine = Engine(store, home=home)
        engine.reconcile()
        return cls(engine)

    async def handle(self, request: ChatRequest) -> AsyncIterator[Reply]:
        try:
            parsed = parse(request.text)
        except UsageError as exc:
            yield Failure(str(exc), USAGE, exc.usage)
            return
        spec = spec_of(parsed)
        ctx = catalog.Context(self.engine, request.identity, request.channel, request.platform)
        outcome, detail = "ok", ""
        try:
            async for reply in parsed.run(ctx):
                if isinstance(reply, Result):
                    outcome, detail = ("ok" if reply.ok else "failed"), reply.title
                yield reply
        except UsageError as exc:
            outcome, detail = "usage", str(exc)
            yield Failure(str(exc), USAGE, exc.usage)
        except BuildError as exc:
            outcome, detail = "failed", str(exc)
            yield Failure(str(exc), FAILED, log_tail=tuple(exc.log_tail))
        except CoreError as exc:
            outcome, detail = "failed", str(exc)
            yield Failure(str(exc), FAILED)
        except Exception:
            log.exception("command %r from %s failed", request.text, request.identity)
            outcome, detail = "error", "internal error"
            yield Failure(
                "shipbot hit an internal error running this command; the details are in its "
                "log. Check `status` before trying again.",
                INTERNAL,
            )
        finally:
            if spec.changes_state:
                app, env = catalog.describe(parsed)
                self.engine.store.audit(
                    user=request.identity,
                    channel=request.channel,
                    command=request.text,
                    app=app,
                    env=env,
                    result=outcome,
                    detail=detail[:500],
                )

    async def run(self, request: ChatRequest) -> list[Reply]:
        return [reply async for reply in self.handle(request)]

    def close(self) -> None:
        self.engine.close()
