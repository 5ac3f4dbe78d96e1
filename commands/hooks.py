"""Git webhook deliveries, from bytes to the dispatcher, for every forge.

A delivery must first carry the proof (signature or token) of a git app's webhook secret,
checked on the raw bytes (``commands.hook_intake``); a request nobody proved gets one
answer, whatever it names, and its audit is counted, not written per request. A proved
delivery is parsed (bounded), must name that app's repository and a delivery id not seen
before (a replay deploys nothing). Then, from app.yml at the registered ref, within the app's
accepted policy (core/policy: a rule or ``previews:`` setting an admin has not accepted is
refused):

- a push to a branch in ``deploy_on_push`` becomes ``deploy APP COMMIT --env ENV`` for the
  commit it names, if that is still the branch's head (else it was superseded);
- a pull request against an app with ``previews:`` becomes ``preview deploy APP N`` on
  open and on every push, and ``preview close APP N`` when it closes or merges;

each sent through the dispatcher as ``webhook:APP``, so grants, approvals, locks and the
audit apply as to anyone. Its lines go to the app's channels (the outbox), and a preview's
URL back to the pull request when a forge token is set. What is accepted, refused or
ignored is audited with the delivery id and the commit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

from commands.catalog.pipelines import WEBHOOK_PLATFORM, webhook_user
from commands.dispatch import Dispatcher
from commands.hook_intake import (
    KEEP_SECONDS,
    UNSIGNED,
    Answer,
    Refusals,
    delivery_id,
    delivery_row,
    describe,
    of_repository,
    plain,
    signers,
)
from commands.replies import ApprovalRequest, Failure, Log, Message, Reply, Result, Step
from commands.request import ChatRequest
from core.apps import credential, repo_folder, sources
from core.appspec import DEFAULT_ENV, AppConfig
from core.errors import CoreError
from core.names import is_ref
from core.pipelines import PipelineError
from core.pipelines.events import Other, PullRequest, Push, parse
from core.pipelines.forge import api_url, comment_request, post_comment
from core.pipelines.payload import load_json
from core.pipelines.preview import domain_for, env_name
from core.pipelines.signatures import DELIVERY_HEADER, FORGES
from core.plane import OffLoop
from core.policy import gate as policy_gate
from core.policy.gate import PolicyError
from core.store import App, Store

log = logging.getLogger("shipbot.hooks")
LINES_PER_POST = 40
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
MAX_NUMBER = 999_999_999  # pr-N stays a valid environment name
# audits a route's refusal or skip: (detail, env, result) -> the answer's part
Ignore = Callable[..., Awaitable[str]]


class Receiver:
    def __init__(self, dispatcher: Dispatcher, clock: Callable[[], float] = time.time) -> None:
        self.dispatcher = dispatcher
        self.clock = clock
        self.refusals = Refusals(clock)
        self.tasks: set[asyncio.Task[None]] = set()
        # one app and environment's events in the order they came (open, then each push)
        self.serial: dict[tuple[str, str], asyncio.Lock] = {}
        self.waiting: dict[tuple[str, str], int] = {}

    @property
    def max_body_bytes(self) -> int:
        return self.dispatcher.config.pipelines.max_body_bytes

    @property
    def store(self) -> Store:
        return self.dispatcher.engine.store

    @property
    def db(self) -> OffLoop:
        return self.dispatcher.engine.db

    def _audit(
        self,
        forge: str,
        what: str,
        result: str,
        detail: str,
        app: str | None = None,
        env: str | None = None,
    ) -> None:
        self.store.audit(
            user=f"{WEBHOOK_PLATFORM}:{forge}",
            channel=forge,
            command=what,
            result=result,
            app=app,
            env=env,
            detail=detail,
        )

    async def _refused(self, forge: str, reason: str) -> None:
        row = self.refusals.note(forge, reason)
        if row is not None:
            await asyncio.to_thread(lambda: self.store.audit(**row))

    async def too_large(self, forge: str, size: int | None) -> Answer:
        limit = self.max_body_bytes
        await self._refused(forge, f"body over {limit} bytes")
        shown = f" ({size})" if size is not None else ""
        where = "pipelines.max_body_bytes in shipbot.yml"
        return Answer(413, f"refused: body over {limit} bytes{shown} ({where})")

    async def receive(self, forge: str, headers: Mapping[str, str], body: bytes) -> Answer:
        """Check and route one delivery; its deploys go on in the background. Nothing in
        the body is read, nor audited, before an app's secret proves it."""
        headers = {key.lower(): value for key, value in headers.items()}
        if forge not in FORGES:
            return Answer(
                404, f"no forge {forge!r}: use /hooks/github, /hooks/gitlab or /hooks/gitea"
            )
        signed = await signers(self.dispatcher, forge, headers, body)
        if not signed:
            await self._refused(forge, "no valid signature")
            return Answer(401, UNSIGNED)
        delivery = delivery_id(forge, headers)
        if delivery is None:
            header = DELIVERY_HEADER[forge]
            await asyncio.to_thread(self._audit, forge, "webhook", "refused", f"no {header}")
            return Answer(400, f"refused: no delivery id ({header}), so a replay could not be told")
        try:
            event = parse(forge, headers, load_json(body))
        except (ValueError, TypeError, PipelineError) as exc:
            detail = f"delivery {delivery} unreadable: {exc}"
            await asyncio.to_thread(self._audit, forge, "webhook", "refused", detail)
            return Answer(400, f"unreadable delivery: {exc}")
        what = plain(f"{describe(event)} (delivery {delivery})", 200)
        if event.repository is None:
            await asyncio.to_thread(self._audit, forge, what, "ignored", "names no repository")
            return Answer(202, "ignored: the event names no repository")
        apps = of_repository(signed, event.repository)
        if not apps:
            names = ", ".join(app.name for app in signed)
            detail = f"signed for {names}, but names another repository"
            await asyncio.to_thread(self._audit, forge, what, "refused", detail)
            return Answer(403, f"refused: {detail}: nothing was done")
        row = delivery_row(forge, delivery, body, event, apps, self.clock())
        forget = self.clock() - KEEP_SECONDS
        new = await self.db.in_thread(lambda: self.store.record_delivery(row, forget_before=forget))
        if not new:
            await self._refused(forge, "a delivery handled already")
            return Answer(200, f"already handled: delivery {delivery}; nothing was done again")
        answers = [await self._route(app, event, what) for app in apps]
        return Answer(202, "; ".join(answers))

    async def _branch_head(self, app: App, branch: str) -> str:
        plane = self.dispatcher.engine.plane
        repo, token = repo_folder(plane, app), credential(plane, app)
        return await asyncio.to_thread(sources.resolve, repo, branch, token)

    async def _route(self, app: App, event: Push | PullRequest | Other, what: str) -> str:
        async def ignored(detail: str, env: str | None = None, result: str = "ignored") -> str:
            await asyncio.to_thread(self._audit, event.forge, what, result, detail, app.name, env)
            return f"{app.name}: {result}: {detail}"

        if isinstance(event, Other):
            return await ignored(f"{event.kind} events deploy nothing")
        try:
            config = await self.dispatcher.engine.config(app.name)
        except CoreError as exc:
            return await ignored(f"app.yml at the registered ref: {exc}", result="failed")
        if isinstance(event, Push):
            return await self._push(app, event, config, what, ignored)
        return await self._pull(app, event, config, ignored)

    async def _push(
        self, app: App, event: Push, config: AppConfig, what: str, ignored: Ignore
    ) -> str:
        if event.deleted or event.branch is None or not is_ref(event.branch):
            return await ignored("not a push of a branch's commits")
        widened = await self._widened(app, config, "deploy_on_push")
        if widened:
            return await ignored(widened, result="refused")
        envs = [rule.env for rule in config.base.deploy_on_push if rule.branch == event.branch]
        if not envs:
            deployed = ", ".join(r.branch for r in config.base.deploy_on_push) or "none"
            return await ignored(
                f"branch {event.branch} is not deployed on push (deploy_on_push: {deployed})"
            )
        if not SHA_RE.match(event.commit):
            return await ignored(f"after {event.commit[:50]!r} is not a commit id", None, "refused")
        try:
            head = await self._branch_head(app, event.branch)
        except CoreError as exc:
            return await ignored(f"branch {event.branch}: {exc}", None, "failed")
        if head != event.commit:
            return await ignored(
                f"superseded by {head}: {event.branch} has moved on since {event.commit[:12]}, "
                "so nothing was deployed"
            )
        pushed = ", ".join(event.logins) or "an unnamed pusher"
        for env in envs:
            await asyncio.to_thread(
                self._audit,
                event.forge,
                what,
                "accepted",
                f"deploying {event.commit} to {env}, pushed by {pushed}",
                app.name,
                env,
            )
            head_line = (
                f"{event.forge} push to {event.branch} by {plain(event.who)}: deploying "
                f"{app.name} ({env}) at {event.commit[:12]}"
            )
            self._start(app.name, env, head_line, f"deploy {app.name} {event.commit} --env {env}")
        return f"{app.name}: deploying {event.branch} to {', '.join(envs)}"

    async def _pull(self, app: App, event: PullRequest, config: AppConfig, ignored: Ignore) -> str:
        if not 0 < event.number <= MAX_NUMBER:
            return await ignored(
                f"pull request number {event.number} is out of range", None, "refused"
            )
        previews = config.base.previews
        env = env_name(event.number)
        # a preview that exists goes when its pull request closes, even if app.yml dropped
        # `previews:` since it was made
        opened = await self.db.in_thread(lambda: self.store.preview(app.name, event.number))
        if event.action == "close" and (previews is not None or opened is not None):
            self._start(
                app.name,
                env,
                f"pull request #{event.number} of {app.name} closed: removing preview {env}",
                f"preview close {app.name} {event.number}",
            )
            return f"{app.name}: closing preview {env}"
        widened = await self._widened(app, config, "previews")
        if widened:
            return await ignored(widened, env, "refused")
        if previews is None:
            return await ignored("app.yml at the registered ref has no previews:", env)
        if event.action == "other":
            return await ignored(f"pull request {event.raw_action}: nothing to do", env)
        if event.from_fork and not previews.forks:
            return await ignored(
                "pull request from a fork (or from a repository the forge no longer names): "
                "previews.forks is off in app.yml",
                env,
                "refused",
            )
        if not SHA_RE.match(event.head_sha):
            return await ignored(f"head {event.head_sha[:50]!r} is not a commit id", env, "refused")
        pending = {
            "app": app.name,
            "number": event.number,
            "env": env,
            "forge": event.forge,
            "repository": event.repository.name,
            "head_sha": event.head_sha,
            "head_ref": event.head_ref,
            "author": event.author,
            "title": event.title,
            "domain": domain_for(previews, event.number),
            "status": "pending",
        }
        await self.db.in_thread(lambda: self.store.save_preview(pending))
        head = (
            f"pull request #{event.number} ({plain(event.title)}) by {plain(event.author)}: "
            f"deploying preview {env} of {app.name}"
        )
        text = f"preview deploy {app.name} {event.number}"
        self._start(app.name, env, head, text, comment_on=event)
        return f"{app.name}: deploying preview {env}"

    async def _widened(self, app: App, config: AppConfig, key: str) -> str | None:
        """Why ``key`` of the registered app.yml may not be followed (it widens the accepted
        policy), also told to the app's channels; None when it may."""
        try:
            await policy_gate.check_app(self.dispatcher.engine.plane, app.name, config, key)
        except PolicyError as exc:
            self._publish(app.name, DEFAULT_ENV, Failure(str(exc)))
            return str(exc)
        return None

    def _start(
        self, app: str, env: str, head: str, text: str, comment_on: PullRequest | None = None
    ) -> None:
        task = asyncio.get_running_loop().create_task(
            self._run(app, env, head, text, comment_on), name=f"webhook {text}"
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(
        self, app: str, env: str, head: str, text: str, comment_on: PullRequest | None
    ) -> None:
        key = (app, env)
        lock = self.serial.setdefault(key, asyncio.Lock())
        self.waiting[key] = self.waiting.get(key, 0) + 1
        try:
            async with lock:
                await self._run_one(app, env, head, text, comment_on)
        finally:
            self.waiting[key] -= 1
            if not self.waiting[key]:  # the last of this environment's events: forget it
                del self.waiting[key], self.serial[key]

    async def _run_one(
        self, app: str, env: str, head: str, text: str, comment_on: PullRequest | None
    ) -> None:
        try:
            if comment_on is not None:  # a preview deploys the newest head it was sent
                row = await self.db.in_thread(lambda: self.store.preview(app, comment_on.number))
                live = await self.db.in_thread(lambda: self.store.live_release(app, env))
                if row is None or (live is not None and live.source_ref == row["head_sha"]):
                    # closed meanwhile, or an earlier event of it deployed this head
                    log.info("webhook %r: nothing left to deploy", text)
                    return
                comment_on = dataclasses.replace(comment_on, head_sha=row["head_sha"])
                head = f"{head} at {row['head_sha'][:12]}"
            self._publish(app, env, Message(head))
            request = ChatRequest(WEBHOOK_PLATFORM, webhook_user(app), "webhook", text)
            result = await self._relay(app, env, self.dispatcher.handle(request))
            if comment_on is not None:
                await self._settle(app, comment_on.number)
            if comment_on is not None and result is not None:
                await self._comment(app, env, comment_on, result)
        except Exception:
            log.exception("webhook %r failed", text)
            self._publish(app, env, Failure(f"webhook `{text}` hit an internal error"))

    async def _settle(self, app: str, number: int) -> None:
        """A preview its deploy never started (refused by a grant, a lock, its app.yml) is
        recorded as refused, not left pending."""
        row = await self.db.in_thread(lambda: self.store.preview(app, number))
        if row is not None and row["status"] == "pending":
            refused = {"app": app, "number": number, "status": "refused"}
            await self.db.in_thread(lambda: self.store.save_preview(refused))

    async def _relay(self, app: str, env: str, replies: AsyncIterator[Reply]) -> Result | None:
        """Send a run's lines to the app's channels (build lines in posts of a few dozen, up
        to each step), and what the dispatcher does not publish itself; returns the result."""
        lines: list[str] = []
        result = None

        def flush() -> None:
            if lines:
                self._publish(app, env, Message("\n".join(lines)))
                lines.clear()

        async for reply in replies:
            if isinstance(reply, Step | Log):
                lines.append(("→ " if isinstance(reply, Step) else "│ ") + reply.text)
                # a step ends a batch at once: the result that follows it is published by
                # the dispatcher before this loop sees it
                if isinstance(reply, Step) or len(lines) >= LINES_PER_POST:
                    flush()
                continue
            flush()
            if isinstance(reply, Result):
                result = reply  # the dispatcher published it to the deploys channels
            elif isinstance(reply, Failure | Message | ApprovalRequest):
                self._publish(app, env, reply)
        flush()
        return result

    def _publish(self, app: str, env: str, reply: Reply) -> None:
        self.dispatcher.notifier.publish("deploys", app, env, reply)

    async def _comment(self, app: str, env: str, pull: PullRequest, result: Result) -> None:
        row = await self.db.in_thread(lambda: self.store.webhook(app))
        if row is None or not row["forge_token"]:
            return
        if result.ok:
            url = result.fields.get("url", "")
            text = f"🚀 Preview `{env}` of `{pull.head_sha[:12]}` is live: {url}"
        else:
            text = f"❌ Preview `{env}` of `{pull.head_sha[:12]}` failed: {result.title}"
        token = self.dispatcher.engine.vault.decrypt(row["forge_token"])
        try:
            api = api_url(self.dispatcher.config.pipelines, pull)
            await post_comment(comment_request(api, pull, token, text))
        except PipelineError as exc:
            self._publish(
                app, env, Message(f"could not comment on pull request #{pull.number}: {exc}")
            )

    async def drain(self) -> None:
        """Wait for every delivery's work to end (tests, and a clean stop)."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)
