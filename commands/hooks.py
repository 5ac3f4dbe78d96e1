"""Git webhook deliveries, from bytes to the dispatcher, for every forge.

A delivery names a repository; the registered git apps with that repository are its
candidates, and it must carry the proof (signature or token) of one candidate's webhook
secret. Then, from app.yml at the registered ref, within the app's accepted policy
(core/policy: a rule or ``previews:`` setting an admin has not accepted is refused):

- a push to a branch in ``deploy_on_push`` becomes ``deploy APP BRANCH --env ENV``;
- a pull request against an app with ``previews:`` becomes ``preview deploy APP N`` on
  open and on every push, and ``preview close APP N`` when it closes or merges;

each sent through the dispatcher as ``webhook:APP``, so grants, approvals, locks and the
audit apply as to anyone. Its lines go to the app's channels (the outbox), and a preview's
URL back to the pull request when a forge token is set. Everything refused or ignored is
audited too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from commands.catalog.pipelines import WEBHOOK_PLATFORM, webhook_user
from commands.dispatch import Dispatcher
from commands.replies import ApprovalRequest, Failure, Log, Message, Reply, Result, Step
from commands.request import ChatRequest
from core.appspec import DEFAULT_ENV, AppConfig
from core.errors import CoreError
from core.names import is_ref
from core.pipelines import PipelineError
from core.pipelines.events import Other, PullRequest, Push, parse
from core.pipelines.forge import api_url, comment_request, post_comment
from core.pipelines.preview import domain_for, env_name
from core.pipelines.repos import same_repository
from core.pipelines.signatures import FORGES, PROOF_HEADER, verify
from core.policy import gate as policy_gate
from core.policy.gate import PolicyError
from core.store import App, Store

log = logging.getLogger("shipbot.hooks")
LINES_PER_POST = 40
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
MAX_NUMBER = 999_999_999  # pr-N stays a valid environment name


@dataclass(frozen=True)
class Answer:
    """What the endpoint tells the forge: an HTTP status and one line."""

    status: int
    text: str


class Receiver:
    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
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

    async def too_large(self, forge: str, size: int | None) -> Answer:
        limit = self.max_body_bytes
        detail = f"body over {limit} bytes" + (f" ({size})" if size is not None else "")
        await asyncio.to_thread(self._audit, forge, f"{forge} webhook", "refused", detail)
        return Answer(413, f"refused: {detail} (pipelines.max_body_bytes in shipbot.yml)")

    async def receive(self, forge: str, headers: Mapping[str, str], body: bytes) -> Answer:
        """Check and route one delivery; its deploys go on in the background."""
        headers = {key.lower(): value for key, value in headers.items()}
        if forge not in FORGES:
            return Answer(
                404, f"no forge {forge!r}: use /hooks/github, /hooks/gitlab or /hooks/gitea"
            )
        try:
            event = parse(forge, headers, json.loads(body))
        except (ValueError, PipelineError) as exc:
            await asyncio.to_thread(self._audit, forge, "webhook", "refused", f"unreadable: {exc}")
            return Answer(400, f"unreadable delivery: {exc}")
        what = plain(describe(event), 160)  # unchecked yet: bounded before the audit keeps it
        repository = event.repository
        if repository is None:
            await asyncio.to_thread(self._audit, forge, what, "ignored", "names no repository")
            return Answer(202, "ignored: the event names no repository")
        candidates = [
            app
            for app in await self.dispatcher.engine.db.list_apps()
            if app.source_kind == "git" and same_repository(app.source, repository.urls)
        ]
        if not candidates:
            detail = f"unknown repository {plain(repository.name or repository.urls[0])}"
            await asyncio.to_thread(self._audit, forge, what, "refused", detail)
            return Answer(404, f"refused: {detail}: no app is registered from it")
        proof = headers.get(PROOF_HEADER[forge])
        apps = [app for app in candidates if await self._proves(app, forge, body, proof)]
        if not apps:
            for app in candidates:
                await asyncio.to_thread(
                    self._audit, forge, what, "refused", "bad signature", app.name
                )
            return Answer(401, "refused: the signature does not match the app's webhook secret")
        answers = [await self._route(app, event, what) for app in apps]
        return Answer(202, "; ".join(answers))

    async def _proves(self, app: App, forge: str, body: bytes, proof: str | None) -> bool:
        row = await self.dispatcher.engine.db.webhook(app.name)
        if row is None or not row["secret"]:
            return False
        return verify(forge, self.dispatcher.engine.vault.decrypt(row["secret"]), body, proof)

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
            for env in envs:
                head = (
                    f"{event.forge} push to {event.branch} by {plain(event.who)}: deploying "
                    f"{app.name} ({env}) at {event.commit[:12]}"
                )
                text = f"deploy {app.name} {event.branch} --env {env}"
                self._start(app.name, env, head, text)
            return f"{app.name}: deploying {event.branch} to {', '.join(envs)}"
        if not 0 < event.number <= MAX_NUMBER:
            return await ignored(
                f"pull request number {event.number} is out of range", None, "refused"
            )
        previews = config.base.previews
        env = env_name(event.number)
        # a preview that exists goes when its pull request closes, even if app.yml dropped
        # `previews:` since it was made
        opened = await self.dispatcher.engine.db.preview(app.name, event.number)
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
                "pull request from a fork: previews.forks is off in app.yml", env, "refused"
            )
        if not SHA_RE.match(event.head_sha):
            return await ignored(f"head {event.head_sha[:50]!r} is not a commit id", env, "refused")
        await self.dispatcher.engine.db.save_preview(
            {
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
        )
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
                row = await self.dispatcher.engine.db.preview(app, comment_on.number)
                live = await self.dispatcher.engine.db.live_release(app, env)
                if row is None or (live is not None and live.source_ref == row["head_sha"]):
                    # closed meanwhile, or an earlier event of it deployed this head
                    log.info("webhook %r: nothing left to deploy", text)
                    return
                comment_on = dataclasses.replace(comment_on, head_sha=row["head_sha"])
                head = f"{head} at {row['head_sha'][:12]}"
            self._publish(app, env, Message(head))
            request = ChatRequest(WEBHOOK_PLATFORM, webhook_user(app), "webhook", text)
            result = await self._relay(app, env, self.dispatcher.handle(request))
            if comment_on is not None and result is not None:
                await self._comment(app, env, comment_on, result)
        except Exception:
            log.exception("webhook %r failed", text)
            self._publish(app, env, Failure(f"webhook `{text}` hit an internal error"))

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
        row = await self.dispatcher.engine.db.webhook(app)
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


def plain(text: str, limit: int = 80) -> str:
    """A name or title from a payload, as shown in a channel: printable, without the angle
    brackets and ampersands chat markup is made of (``<!channel>``), and short."""
    kept = "".join(c for c in text if c.isprintable() and c not in "<>&")[:limit]
    return kept or "?"


def describe(event: Push | PullRequest | Other) -> str:
    """The delivery in a few words, as the audit's command."""
    if isinstance(event, Push):
        return f"{event.forge} push {event.branch or '(not a branch)'} {event.commit[:12]}"
    if isinstance(event, PullRequest):
        return (
            f"{event.forge} pull request #{event.number} {event.raw_action} {event.head_sha[:12]}"
        )
    return f"{event.forge} {event.kind}"
