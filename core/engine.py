"""The deployment engine: deploy, rollback, scale, restart, status, logs, releases.

Operations that change the swarm are async generators of ``core.events``; the last event
is always an ``Outcome``. Problems found before anything changed raise a ``CoreError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import rollout, sources
from core.appspec import APP_NAME_RE, DEFAULT_ENV, AppConfig, AppSpec, load_app_config
from core.durations import format_duration
from core.errors import BuildError, CoreError, DeployError, SourceError, UnknownApp
from core.events import Event, LogLine, Outcome, Progress
from core.plan import diff
from core.secrets import Vault
from core.store import RELEASE_FAILED, App, Release, Store, shipbot_home
from core.swarm import Swarm, split_tag
from core.swarm_spec import (
    LABEL_ENV,
    LABEL_RELEASE,
    image_ref,
    service_name,
    service_spec,
    with_force_update,
    with_replicas,
)

KEEP_RELEASES = 10
SEALED = "sealed:"
LOG_TAIL = 10
BASE_DEADLINE_SECONDS = 60.0


@dataclass(frozen=True)
class ServiceStatus:
    app: str
    env: str
    release: str
    running: int
    desired: int
    healthchecked: bool
    update_state: str | None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def deadline_seconds(spec: AppSpec) -> float:
    """Time allowed for a rollout: a base plus what the health check needs, twice."""
    check = spec.healthcheck
    if check is None:
        return BASE_DEADLINE_SECONDS
    one_verdict = check.start_period + (check.interval + check.timeout) * (check.retries + 1)
    return BASE_DEADLINE_SECONDS + 2 * one_verdict / 1e9


def _with_env(spec: dict[str, Any], env: list[str]) -> dict[str, Any]:
    template = spec["TaskTemplate"]
    return {
        **spec,
        "TaskTemplate": {**template, "ContainerSpec": {**template["ContainerSpec"], "Env": env}},
    }


def _mutable_tag(image: str) -> bool:
    """Pull again only what may have moved: ``latest`` or no tag (pinned tags pull once)."""
    return "@" not in image and split_tag(image)[1] in (None, "latest")


class Engine:
    def __init__(
        self,
        store: Store,
        connect: Callable[[], Swarm] = Swarm.connect,
        home: Path | None = None,
        vault: Vault | None = None,
    ) -> None:
        self.store = store
        self._connect = connect
        self._swarm: Swarm | None = None
        self.home = home or shipbot_home()
        self.vault = vault or Vault.open(self.home)

    async def swarm(self) -> Swarm:
        if self._swarm is None:
            self._swarm = await asyncio.to_thread(self._connect)
        return self._swarm

    def reconcile(self) -> list[dict[str, Any]]:
        """On start: deployments left running by a dead process are marked interrupted."""
        return self.store.interrupt_orphans(_alive)

    # apps
    def app(self, name: str) -> App:
        app = self.store.get_app(name)
        if app is None:
            known = ", ".join(a.name for a in self.store.list_apps()) or "none yet"
            raise UnknownApp(
                f"no app named {name!r} (registered: {known}); "
                f"register it with `apps add {name} --path DIR`"
            )
        return app

    async def add_app(
        self,
        name: str,
        *,
        user: str,
        path: str | None = None,
        git: str | None = None,
        ref: str | None = None,
    ) -> tuple[App, AppConfig]:
        if not APP_NAME_RE.match(name):
            raise CoreError(f"{name!r} is not a valid app name: use a-z, 0-9 and '-'")
        if git is not None:
            dest = self.home / "sources" / name
            await asyncio.to_thread(sources.clone, git, dest, ref)
            folder, kind, source = dest, "git", git
        else:
            folder = Path(path or ".").expanduser().resolve()
            if not folder.is_dir():
                raise SourceError(f"{folder} is not a folder")
            kind, source = "path", str(folder)
        config = load_app_config(folder)
        if config.name != name:
            raise CoreError(
                f"{folder}/app.yml names the app {config.name!r}, not {name!r}: "
                "use the same name in both"
            )
        app = App(
            name=name,
            source_kind=kind,
            source=source,
            ref=ref,
            created_by=user,
            created_at=time.time(),
        )
        self.store.add_app(app)
        return app, config

    def source_folder(self, app: App) -> Path:
        return Path(app.source) if app.source_kind == "path" else self.home / "sources" / app.name

    async def config(self, app: App, ref: str | None = None) -> tuple[AppConfig, str | None]:
        """Read app.yml from the app's source, after checking out ``ref`` for git apps."""
        folder = self.source_folder(app)
        commit = None
        if app.source_kind == "git":
            commit = await asyncio.to_thread(sources.checkout, folder, ref or app.ref or "HEAD")
        if not folder.is_dir():
            raise SourceError(f"the source folder of {app.name} is gone: {folder}")
        return load_app_config(folder), commit

    async def resolve(
        self, app: App, env: str, ref: str | None
    ) -> tuple[AppSpec, set[str], str | None]:
        """The spec to deploy to ``env``: app.yml at ``ref``, chat variables, secrets."""
        config, commit = await self.config(app, ref if app.source_kind == "git" else None)
        self.check_env(config, env)
        spec, secret_keys = self.with_variables(config.for_env(env), env)
        return spec, secret_keys, commit

    @staticmethod
    def check_env(config: AppConfig, env: str) -> None:
        if env != DEFAULT_ENV and env not in config.environments:
            declared = ", ".join([DEFAULT_ENV, *config.environments])
            raise CoreError(
                f"{config.name} has no environment {env!r}: app.yml declares {declared}"
            )

    # deploy
    async def deploy(
        self,
        name: str,
        *,
        user: str,
        env: str | None = None,
        ref: str | None = None,
        approved_by: str | None = None,
    ) -> AsyncIterator[Event]:
        env = env or DEFAULT_ENV
        app = self.app(name)
        spec, secret_keys, commit = await self.resolve(app, env, ref)
        if ref is not None and app.source_kind == "path" and spec.build is not None:
            raise SourceError(
                f"{name} is built from the folder {app.source}; a ref applies to git apps "
                "and to image apps (as the image tag)"
            )
        swarm = await self.swarm()
        await asyncio.to_thread(swarm.ensure_network)
        started = time.monotonic()
        release = self.store.new_release(
            app=name,
            env=env,
            image_for=lambda number: image_ref(name, number),
            source_ref=commit or ref,
            deployed_by=user,
        )
        deployment = self.store.start_deployment(
            app=name,
            env=env,
            kind="deploy",
            started_by=user,
            release=release.number,
            approved_by=approved_by,
        )
        yield Progress(f"release {release.number} of {name} ({env}) started by {user}")
        try:
            if spec.build is not None:
                async for event in self._build(swarm, app, spec, release):
                    yield event
            else:
                await self._pull(swarm, spec, ref, release)
            outcome = None
            async for event in self._roll_out(swarm, spec, env, release, started, secret_keys):
                if isinstance(event, Outcome):
                    outcome = event
                yield event
        except BaseException as exc:
            self.store.update_release(release.id, status=RELEASE_FAILED, message=str(exc))
            self.store.finish_deployment(deployment, "failed", str(exc))
            raise
        assert outcome is not None
        self.store.finish_deployment(
            deployment, "succeeded" if outcome.ok else "failed", outcome.title
        )
        if outcome.ok:
            await asyncio.to_thread(self._prune_images, swarm, name)

    async def _build(
        self, swarm: Swarm, app: App, spec: AppSpec, release: Release
    ) -> AsyncIterator[Event]:
        assert spec.build is not None
        folder = self.source_folder(app)
        context = (folder / spec.build.context).resolve()
        dockerfile = (context / spec.build.dockerfile).resolve()
        if not context.is_dir() or folder.resolve() not in (context, *context.parents):
            raise BuildError(
                f"build.context {spec.build.context!r} is not a folder inside {folder}"
            )
        if context not in dockerfile.parents:
            raise BuildError(
                f"build.dockerfile {spec.build.dockerfile!r} is outside build.context "
                f"{spec.build.context!r}"
            )
        if not dockerfile.is_file():
            raise BuildError(
                f"no Dockerfile at {dockerfile}: add one, or set build.dockerfile in app.yml"
            )
        yield Progress(f"building {release.image}")
        lines: list[str] = []
        queue: asyncio.Queue[dict[str, Any] | BaseException | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def pump() -> None:
            try:
                for message in swarm.build(
                    str(context),
                    str(dockerfile.relative_to(context)),
                    release.image,
                    dict(spec.build.args),
                    {LABEL_RELEASE: str(release.number)},
                ):
                    loop.call_soon_threadsafe(queue.put_nowait, message)
                loop.call_soon_threadsafe(queue.put_nowait, None)
            except BaseException as exc:  # handed to the event loop, raised there
                loop.call_soon_threadsafe(queue.put_nowait, exc)

        pumping = asyncio.create_task(asyncio.to_thread(pump))
        error: str | None = None
        try:
            while (message := await queue.get()) is not None:
                if isinstance(message, BaseException):
                    raise message
                if "error" in message:
                    error = str(message["error"]).strip()
                    lines.append(error)
                    yield LogLine(error)
                for line in str(message.get("stream", "")).splitlines():
                    if line.strip():
                        lines.append(line)
                        yield LogLine(line)
        finally:
            await pumping
        image_id = await asyncio.to_thread(swarm.image_id, release.image)
        if error or image_id is None:
            raise BuildError(
                f"the build of {app.name} failed: {error or 'no image was produced'}",
                lines[-LOG_TAIL:],
            )
        self.store.update_release(release.id, image_id=image_id)

    async def _pull(self, swarm: Swarm, spec: AppSpec, ref: str | None, release: Release) -> None:
        assert spec.image is not None
        image = spec.image
        if ref is not None:
            sources.check_ref(ref)
            image = f"{split_tag(image)[0]}:{ref}"
        if _mutable_tag(image) or await asyncio.to_thread(swarm.image_id, image) is None:
            try:
                await asyncio.to_thread(swarm.pull, image)
            except DeployError:
                # Offline or private registry: a copy already on the engine is still usable.
                if await asyncio.to_thread(swarm.image_id, image) is None:
                    raise
        await asyncio.to_thread(swarm.tag, image, release.image)
        image_id = await asyncio.to_thread(swarm.image_id, release.image)
        self.store.update_release(release.id, image_id=image_id, source_ref=image)

    async def _roll_out(
        self,
        swarm: Swarm,
        spec: AppSpec,
        env: str,
        release: Release,
        started: float,
        secret_keys: set[str],
    ) -> AsyncIterator[Event]:
        name = service_name(spec.name, env)
        current = await asyncio.to_thread(swarm.inspect_service, name)
        force = (current or {}).get("Spec", {}).get("TaskTemplate", {}).get("ForceUpdate", 0)
        desired = service_spec(spec, env, release.number, release.image, force_update=force)
        self.store.update_release(release.id, spec=self._seal(desired, secret_keys))
        live = self.store.live_release(spec.name, env)
        target = rollout.Target(
            name=name,
            image=release.image,
            replicas=spec.replicas,
            force_update=force,
            expect_update=current is not None,
            previous_update=rollout.update_started(current),
        )
        if current is None:
            yield Progress(f"creating service {name}")
            await asyncio.to_thread(swarm.create_service, desired)
        else:
            yield Progress(f"updating service {name} (start-first)")
            await asyncio.to_thread(swarm.update_service, desired)
        watch = rollout.Watch(rollout.wait(swarm, target, deadline_seconds(spec)))
        async for event in watch.progress():
            yield event
        result = watch.verdict
        fields = {
            "app": spec.name,
            "env": env,
            "release": str(release.number),
            "image": release.image,
            "replicas": str(spec.replicas),
        }
        if result.ok:
            self.store.mark_live(release.id)
            fields["duration"] = format_duration(time.monotonic() - started)
            yield Outcome(
                True, f"{spec.name} release {release.number} is live on {env}", fields=fields
            )
            return
        reason, tail = await asyncio.to_thread(rollout.explain, swarm, result.failed_task)
        self.store.update_release(release.id, status=RELEASE_FAILED, message=reason)
        async for event in self._recover(swarm, name, result, live, current is None):
            yield event
        details = [f"why: {reason}"]
        if live is not None:
            details.append(f"{name} still runs release {live.number}")
        fields["duration"] = format_duration(time.monotonic() - started)
        yield Outcome(
            False,
            self._failure_title(spec.name, release.number, result, live),
            details,
            fields,
            tail,
        )

    @staticmethod
    def _failure_title(
        app: str, number: int, result: rollout.Converged, live: Release | None
    ) -> str:
        verdict = {
            "timeout": "did not become healthy in time",
            "paused": "stalled",
            "failed": "failed",
            "rolled_back": "failed",
        }[result.state]
        if live is None:
            return f"deploy of {app} release {number} {verdict}; no earlier release to roll back to"
        return (
            f"deploy of {app} release {number} {verdict} and was rolled back to release "
            f"{live.number}"
        )

    async def _recover(
        self,
        swarm: Swarm,
        name: str,
        result: rollout.Converged,
        live: Release | None,
        created: bool,
    ) -> AsyncIterator[Event]:
        """Put the last good release back, unless Swarm already did."""
        if result.state == "rolled_back":
            yield Progress("Swarm rolled the update back")
            return
        if created and live is None:
            yield Progress(f"removing {name}: its first release never became healthy")
            await asyncio.to_thread(swarm.remove_service, name)
            return
        if live is not None:
            yield Progress(f"rolling back to release {live.number}")
            async for event in rollout.Watch(self._apply_release(swarm, live)).progress():
                yield event

    async def _apply_release(self, swarm: Swarm, release: Release) -> AsyncIterator[Event]:
        """Apply a stored release's spec and wait; ends with a ``rollout.Converged``."""
        name = release.spec["Name"]
        current = await asyncio.to_thread(swarm.inspect_service, name)
        force = (current or {}).get("Spec", {}).get("TaskTemplate", {}).get("ForceUpdate", 0)
        desired = with_force_update(self._unseal(release.spec), force)
        replicas = desired["Mode"]["Replicated"]["Replicas"]
        target = rollout.Target(
            name=name,
            image=release.image,
            replicas=replicas,
            force_update=force,
            expect_update=current is not None,
            previous_update=rollout.update_started(current),
        )
        if current is None:
            await asyncio.to_thread(swarm.create_service, desired)
        else:
            await asyncio.to_thread(swarm.update_service, desired)
        async for event in rollout.wait(swarm, target, BASE_DEADLINE_SECONDS * 2):
            yield event

    def _prune_images(self, swarm: Swarm, app: str) -> None:
        numbers = sorted(
            {
                r["number"]
                for r in self.store.db["releases"].rows_where("app = ?", [app], select="number")
            }
        )
        for number in numbers[:-KEEP_RELEASES]:
            swarm.remove_image(image_ref(app, number))

    # variables and secrets
    def with_variables(self, spec: AppSpec, env: str) -> tuple[AppSpec, set[str]]:
        """app.yml's env, then variables set from chat, then secrets (decrypted)."""
        merged, secret_keys = dict(spec.env), set()
        for row in self.store.variables(spec.name, env):
            if row["secret"]:
                merged[row["key"]] = self.vault.decrypt(row["value"])
                secret_keys.add(row["key"])
            else:
                merged[row["key"]] = row["value"]
        return spec.model_copy(update={"env": merged}), secret_keys

    def secret_values(self) -> list[str]:
        """Every stored secret, decrypted: what replies must never show."""
        return [self.vault.decrypt(row["value"]) for row in self.store.variables() if row["secret"]]

    def _seal(self, spec: dict[str, Any], secret_keys: set[str]) -> dict[str, Any]:
        """The spec as stored with a release: secret values encrypted, for rollbacks."""
        env = []
        for entry in spec["TaskTemplate"]["ContainerSpec"].get("Env", []):
            key, _, value = entry.partition("=")
            env.append(
                f"{key}={SEALED}{self.vault.encrypt(value)}" if key in secret_keys else entry
            )
        return _with_env(spec, env)

    def _unseal(self, spec: dict[str, Any]) -> dict[str, Any]:
        env = []
        for entry in spec["TaskTemplate"]["ContainerSpec"].get("Env", []):
            key, _, value = entry.partition("=")
            if value.startswith(SEALED):
                value = self.vault.decrypt(value.removeprefix(SEALED))
            env.append(f"{key}={value}")
        return _with_env(spec, env)

    async def plan(self, name: str, *, env: str | None = None, ref: str | None = None) -> list[str]:
        """What ``deploy`` would change, without building or touching the swarm."""
        env = env or DEFAULT_ENV
        spec, secret_keys, _ = await self.resolve(self.app(name), env, ref)
        swarm = await self.swarm()
        current = await asyncio.to_thread(swarm.inspect_service, service_name(name, env))
        number = 1 + max((r.number for r in self.store.releases(name, limit=1)), default=0)
        current_spec = (current or {}).get("Spec")
        force = (current_spec or {}).get("TaskTemplate", {}).get("ForceUpdate", 0)
        desired = service_spec(spec, env, number, image_ref(name, number), force_update=force)
        source = "build" if spec.build else f"image {spec.image}"
        return [f"release {number} ({source})", *diff(current_spec, desired, secret_keys)]

    # rollback
    async def rollback(
        self,
        name: str,
        *,
        user: str,
        env: str | None = None,
        number: int | None = None,
        approved_by: str | None = None,
    ) -> AsyncIterator[Event]:
        env = env or DEFAULT_ENV
        self.app(name)
        live = self.store.live_release(name, env)
        target = self._rollback_target(name, env, live, number)
        swarm = await self.swarm()
        if await asyncio.to_thread(swarm.image_id, target.image) is None:
            raise DeployError(
                f"the image of release {target.number} ({target.image}) is gone from the engine; "
                f"only the last {KEEP_RELEASES} releases are kept"
            )
        started = time.monotonic()
        deployment = self.store.start_deployment(
            app=name,
            env=env,
            kind="rollback",
            started_by=user,
            release=target.number,
            approved_by=approved_by,
        )
        yield Progress(f"rolling {name} ({env}) back to release {target.number}")
        watch = rollout.Watch(self._apply_release(swarm, target))
        try:
            async for event in watch.progress():
                yield event
        except BaseException as exc:
            self.store.finish_deployment(deployment, "failed", str(exc))
            raise
        result = watch.verdict
        fields = {
            "app": name,
            "env": env,
            "release": str(target.number),
            "image": target.image,
            "duration": format_duration(time.monotonic() - started),
        }
        if result.ok:
            self.store.mark_live(target.id, f"made live again by {user} (rollback)")
            self.store.finish_deployment(deployment, "succeeded")
            yield Outcome(True, f"{name} is back on release {target.number} ({env})", fields=fields)
            return
        reason, tail = await asyncio.to_thread(rollout.explain, swarm, result.failed_task)
        self.store.finish_deployment(deployment, "failed", reason)
        still = f"release {live.number}" if live else "what it ran before"
        yield Outcome(
            False,
            f"rollback of {name} to release {target.number} failed; it still runs {still}",
            [f"why: {reason}"],
            fields,
            tail,
        )

    def _rollback_target(
        self, name: str, env: str, live: Release | None, number: int | None
    ) -> Release:
        if number is not None:
            target = self.store.release(name, env, number)
            if target is None or not target.spec:
                raise DeployError(f"{name} has no release {number} on {env}: see `releases {name}`")
            if target.status == RELEASE_FAILED:
                raise DeployError(f"release {number} of {name} failed its deploy; pick another")
            if live is not None and target.id == live.id:
                raise DeployError(f"release {number} is already live on {env}")
            return target
        for candidate in self.store.releases(name, env, limit=KEEP_RELEASES + 1):
            if (
                candidate.status != RELEASE_FAILED
                and candidate.spec
                and (live is None or candidate.number < live.number)
            ):
                return candidate
        raise DeployError(f"{name} has no earlier good release on {env} to roll back to")

    # scale / restart
    async def scale(
        self, name: str, replicas: int, *, user: str, env: str | None = None
    ) -> AsyncIterator[Event]:
        env = env or DEFAULT_ENV
        if not 0 <= replicas <= 100:
            raise CoreError(f"replicas must be between 0 and 100, got {replicas}")
        async for event in self._change(
            name,
            env,
            user,
            "scale",
            lambda spec, _: with_replicas(spec, replicas),
            expect_update=False,
        ):
            yield event

    async def restart(
        self, name: str, *, user: str, env: str | None = None
    ) -> AsyncIterator[Event]:
        env = env or DEFAULT_ENV
        async for event in self._change(
            name,
            env,
            user,
            "restart",
            lambda spec, force: with_force_update(spec, force + 1),
            expect_update=True,
        ):
            yield event

    async def _change(
        self,
        name: str,
        env: str,
        user: str,
        kind: str,
        change: Callable[[dict[str, Any], int], dict[str, Any]],
        *,
        expect_update: bool,
    ) -> AsyncIterator[Event]:
        self.app(name)
        live = self.store.live_release(name, env)
        if live is None:
            raise DeployError(f"{name} has no live release on {env}: deploy it first")
        swarm = await self.swarm()
        svc_name = service_name(name, env)
        current = await asyncio.to_thread(swarm.inspect_service, svc_name)
        if current is None:
            raise DeployError(f"service {svc_name} is not on the swarm: deploy {name} again")
        started = time.monotonic()
        spec = current["Spec"]
        force = spec["TaskTemplate"].get("ForceUpdate", 0)
        desired = change(spec, force)
        replicas = desired["Mode"]["Replicated"]["Replicas"]
        deployment = self.store.start_deployment(
            app=name, env=env, kind=kind, started_by=user, release=live.number
        )
        target = rollout.Target(
            name=svc_name,
            image=desired["TaskTemplate"]["ContainerSpec"]["Image"].split("@")[0],
            replicas=replicas,
            force_update=desired["TaskTemplate"].get("ForceUpdate", 0),
            expect_update=expect_update,
            previous_update=rollout.update_started(current),
        )
        yield Progress(f"{kind} of {svc_name}: {replicas} replicas")
        await asyncio.to_thread(swarm.update_service, desired)
        watch = rollout.Watch(rollout.wait(swarm, target, BASE_DEADLINE_SECONDS * 2))
        async for event in watch.progress():
            yield event
        result = watch.verdict
        fields = {
            "app": name,
            "env": env,
            "release": str(live.number),
            "replicas": str(replicas),
            "duration": format_duration(time.monotonic() - started),
        }
        if result.ok:
            self.store.finish_deployment(deployment, "succeeded")
            title = (
                f"{name} ({env}) scaled to {replicas}"
                if kind == "scale"
                else f"{name} ({env}) restarted, {replicas} tasks replaced"
            )
            details = []
            if (
                kind == "scale"
                and live.spec.get("Mode", {}).get("Replicated", {}).get("Replicas") != replicas
            ):
                details.append("app.yml still sets its own count: the next deploy applies it")
            yield Outcome(True, title, details, fields)
            return
        reason, tail = await asyncio.to_thread(rollout.explain, swarm, result.failed_task)
        self.store.finish_deployment(deployment, "failed", reason)
        yield Outcome(
            False, f"{kind} of {name} ({env}) did not converge", [f"why: {reason}"], fields, tail
        )

    # read-only
    async def status(self, name: str | None = None) -> list[ServiceStatus]:
        if name is not None:
            self.app(name)
        swarm = await self.swarm()
        return await asyncio.to_thread(self._status, swarm, name)

    def _status(self, swarm: Swarm, name: str | None) -> list[ServiceStatus]:
        out = []
        for service in swarm.services(name):
            spec = service["Spec"]
            labels = spec.get("Labels", {})
            desired = spec.get("Mode", {}).get("Replicated", {}).get("Replicas", 0)
            tasks = swarm.tasks(spec["Name"])
            running = sum(
                1
                for t in tasks
                if t["DesiredState"] == "running" and t["Status"]["State"] == "running"
            )
            out.append(
                ServiceStatus(
                    app=labels.get("shipbot.app", spec["Name"]),
                    env=labels.get(LABEL_ENV, "?"),
                    release=labels.get(LABEL_RELEASE, "?"),
                    running=running,
                    desired=desired,
                    healthchecked="Healthcheck" in spec["TaskTemplate"]["ContainerSpec"],
                    update_state=(service.get("UpdateStatus") or {}).get("State"),
                )
            )
        return sorted(out, key=lambda s: (s.app, s.env))

    async def logs(self, name: str, *, env: str | None = None, tail: int = 50) -> list[str]:
        env = env or DEFAULT_ENV
        self.app(name)
        swarm = await self.swarm()
        svc = service_name(name, env)
        if await asyncio.to_thread(swarm.inspect_service, svc) is None:
            raise DeployError(f"{name} is not running on {env}: deploy it first")
        return await asyncio.to_thread(swarm.service_logs, svc, tail)

    def releases(self, name: str, env: str | None = None) -> list[Release]:
        self.app(name)
        return self.store.releases(name, env or DEFAULT_ENV, limit=KEEP_RELEASES)

    def close(self) -> None:
        if self._swarm is not None:
            with contextlib.suppress(Exception):
                self._swarm.api.close()
        self.store.close()
