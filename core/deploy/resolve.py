"""What a deploy would deploy, resolved once: app.yml at a commit, chat variables, secrets.

The dry run, the approval card and the deploy itself all read this one ``Resolved``; its
digest is what an approval binds to.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from core.apps import get_app, read_config, repo_folder, sources
from core.appspec import DEFAULT_ENV, AppConfig, AppSpec
from core.appspec.swarm import secrets_of_others
from core.data import databases, db_networks
from core.deploy import images, links
from core.deploy.spec import (
    derived_names,
    names_of_others,
    refused_host_paths,
)
from core.edge.domains import require_grants
from core.errors import CoreError, SourceError
from core.names import is_ref
from core.plane import Plane
from core.policy import gate as policy_gate
from core.servers.where import known
from core.store import App
from core.swarm import split_tag
from core.swarm.servers import LOCAL


@dataclass(frozen=True)
class Resolved:
    app: App
    env: str
    ref: str | None  # as asked for
    commit: str | None  # what a git ref resolved to
    spec: AppSpec  # app.yml for ``env`` with chat variables and secrets merged in
    secret_keys: frozenset[str]
    digest: str  # short keyed digest of commit + spec: what an approval covers
    # app.yml's ``image:``, pinned here: pulled by that digest with the app's login and
    # tagged as the release's own image (so prune and rollback treat it as a build)
    app_image: bool = False

    @property
    def source_ref(self) -> str | None:
        return self.commit or self.spec.image or self.ref


def check_env(config: AppConfig, env: str) -> None:
    if env != DEFAULT_ENV and env not in config.environments:
        declared = ", ".join(dict.fromkeys([DEFAULT_ENV, *config.environments]))
        raise CoreError(f"{config.name} has no environment {env!r}: app.yml declares {declared}")


def with_variables(plane: Plane, spec: AppSpec, env: str) -> tuple[AppSpec, frozenset[str]]:
    """app.yml's env, then variables set from chat, then secrets (decrypted), then the URLs
    of the databases app.yml names (secrets too; only those attached to this app and env)."""
    merged, secret_keys = dict(spec.env), set()
    for row in plane.store.variables(spec.name, env):
        if row["secret"]:
            merged[row["key"]] = plane.vault.decrypt(row["value"])
            secret_keys.add(row["key"])
        else:
            merged[row["key"]] = row["value"]
    urls = databases.urls_for(plane, spec.name, env, spec.databases)
    for name in spec.databases:  # attached, so it exists: it must share the app's swarm
        db_networks.refuse_other_swarm(plane, name, spec.name, env, spec.server or plane.server)
    merged.update(urls)
    secret_keys.update(urls)
    return spec.model_copy(update={"env": merged}), frozenset(secret_keys)


def _with_ref(app: App, spec: AppSpec, ref: str | None) -> AppSpec:
    if ref is None or app.source_kind == "git":
        return spec
    if spec.build is not None:
        raise SourceError(
            f"{app.name} is built from the folder {app.source}; a ref applies to git apps "
            "and to image apps (as the image tag)"
        )
    assert spec.image is not None
    if not is_ref(ref):
        raise SourceError(f"{ref!r} is not an image tag")
    return spec.model_copy(update={"image": f"{split_tag(spec.image)[0]}:{ref}"})


def check_mounts(plane: Plane, spec: AppSpec) -> None:
    local = (spec.server or plane.server) == LOCAL
    realpath = os.path.realpath if local else os.path.normpath
    refused = refused_host_paths(spec, plane.host_paths, realpath)
    if refused:
        allowed = ", ".join(plane.host_paths) or "none"
        raise CoreError(
            f"{spec.name}: volumes bind-mount host paths ({', '.join(refused)}) outside the "
            f"folders shipbot.yml allows (host_paths: {allowed}); use a named volume "
            "(`data:/var/lib/app`), or an admin adds the folder to host_paths"
        )


def check_server(plane: Plane, spec: AppSpec) -> None:
    """A server added over SSH runs only the apps shipbot.yml opens it to (``server_apps``):
    app.yml is written by whoever may deploy the app, and must not choose another team's
    machines."""
    server = spec.server or plane.server
    if server in (LOCAL, plane.server):
        return
    every = known(plane)
    if server not in every:
        raise CoreError(
            f"{spec.name}: app.yml puts it on server {server!r}, which shipbot does not know "
            f"(known: {', '.join(every) or 'none'}): an admin adds it with `server add "
            f"{server} ssh://USER@HOST`, or app.yml names one of those; nothing was changed"
        )
    patterns = plane.server_apps.get(server, ())
    if not any(fnmatchcase(spec.name, pattern) for pattern in patterns):
        raise CoreError(
            f"{spec.name}: app.yml puts it on server {server!r}, which is not open to it; an "
            f"admin opens it in shipbot.yml (server_apps: {{{server}: [{spec.name}]}})"
        )


async def claimed(plane: Plane, spec: AppSpec, env: str) -> str | None:
    """What of another app's, or of a managed database, ``spec`` in ``env`` would make or
    mount (its service, volumes, Swarm secrets), in words; None when nothing."""
    others = [a.name for a in await plane.db.in_thread(lambda: plane.store.list_apps())]
    taken = names_of_others(spec, env, others) + secrets_of_others(
        spec.name, spec.swarm_secrets, others
    )
    if taken:
        name, other = taken[0]
        return f"would make {name!r}, which is app {other!r}'s name space"
    held = await asyncio.to_thread(databases.holding, plane, derived_names(spec, env))
    if held:
        return f"would make {held[0]!r}, which belongs to a managed database"
    return None


async def resolve(
    plane: Plane, name: str, env: str | None, ref: str | None, image: str | None = None
) -> Resolved:
    """``image``: a registry image to run instead of what app.yml builds or names (app.yml
    at the registered ref gives everything else); it is pinned to its digest here."""
    env = env or DEFAULT_ENV
    if image is not None and ref is not None:
        raise CoreError("give a REF or --image, not both: --image names what runs")
    app = await asyncio.to_thread(get_app, plane.store, name)
    config, commit = await read_config(plane, app, ref)
    check_env(config, env)
    await policy_gate.check_env(plane, app.name, config, env, commit, ref)
    spec, secret_keys = await asyncio.to_thread(with_variables, plane, config.for_env(env), env)
    spec = _with_ref(app, spec, ref)
    if image is not None:
        pinned = await images.pin(plane, app.name, image, server=spec.server)
        spec, commit = spec.model_copy(update={"build": None, "image": pinned}), None
    check_mounts(plane, spec)
    check_server(plane, spec)
    await require_grants(plane.db, app.name, env, spec.domains)
    await asyncio.to_thread(links.check, plane, spec, env)
    wildcards = [d for d in spec.domains if d.startswith("*.")]
    if wildcards and spec.https and not plane.edge.acme.dns_token_secret:
        raise CoreError(
            f"{app.name}: {wildcards[0]} needs a DNS-01 certificate (HTTP-01 cannot prove a "
            "wildcard): an admin sets edge.acme.dns_token_secret in shipbot.yml; nothing "
            "was changed"
        )
    claim = await claimed(plane, spec, env)
    if claim:
        raise CoreError(
            f"{app.name} in environment {env!r} {claim}; pick another environment or volume "
            "name, nothing was changed"
        )
    if image is None:  # app.yml's own image: checked and pinned like --image
        spec = await images.pin_spec(plane, app.name, spec)
    body = json.dumps(
        {"commit": commit, "env": env, "spec": spec.model_dump(mode="json")}, sort_keys=True
    )
    digest = plane.vault.digest(body.encode())
    app_image = image is None and spec.build is None
    return Resolved(app, env, ref, commit, spec, secret_keys, digest, app_image)


@contextlib.asynccontextmanager
async def source_tree(plane: Plane, resolved: Resolved) -> AsyncIterator[Path]:
    """The folder a build reads: the app's own folder, or a private copy of the commit."""
    app = resolved.app
    if app.source_kind != "git":
        yield Path(app.source)
        return
    assert resolved.commit is not None
    with contextlib.ExitStack() as stack:
        snapshot = sources.snapshot(repo_folder(plane, app), resolved.commit)
        folder = await asyncio.to_thread(stack.enter_context, snapshot)
        try:
            yield folder
        finally:
            await asyncio.to_thread(stack.close)
