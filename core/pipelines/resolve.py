"""What a preview deploys, resolved once: the pull request's head commit, its app.yml within
what the registered app.yml's ``previews:`` allows (core/pipelines/preview.py), itself
within what an admin accepted (core/policy)."""

from __future__ import annotations

import asyncio
import json

from core.apps import config_at, credential, get_app, read_config, repo_folder, sources
from core.appspec import Previews
from core.deploy import images
from core.deploy.resolve import Resolved, check_mounts, check_server, claimed
from core.edge.domains import require_grants
from core.pipelines import PipelineError
from core.pipelines.preview import env_name, grant_to_ask, preview_spec, pull_refspec
from core.plane import Plane
from core.policy import gate as policy_gate
from core.policy.gate import PolicyError


async def previews_of(plane: Plane, name: str) -> Previews:
    """``previews:`` of app.yml at the registered ref; refused when it has none."""
    app = await asyncio.to_thread(get_app, plane.store, name)
    if app.source_kind != "git":
        raise PipelineError(f"{name} is built from a folder: previews need a git app")
    registered, _ = await read_config(plane, app)
    try:
        await policy_gate.check_app(plane, name, registered, "previews")
    except PolicyError as exc:
        raise PipelineError(str(exc)) from exc
    previews = registered.base.previews
    if previews is None:
        raise PipelineError(
            f"{name} has no `previews:` in app.yml at its registered ref, so pull requests "
            "get no preview environments"
        )
    # where previews run, from the registered app.yml alone: `previews.server`, else its
    # top-level `server:` (None: the control plane's own)
    return previews.model_copy(update={"server": previews.server or registered.base.server})


async def resolve_preview(
    plane: Plane, name: str, number: int, head_sha: str, forge: str
) -> Resolved:
    previews = await previews_of(plane, name)
    app = await asyncio.to_thread(get_app, plane.store, name)
    repo, token = repo_folder(plane, app), credential(plane, app)
    commit = await asyncio.to_thread(
        sources.fetch_commit, repo, head_sha, [pull_refspec(forge, number)], token
    )
    head = await asyncio.to_thread(config_at, repo, commit, name)
    env = env_name(number)
    spec = await images.pin_spec(plane, name, preview_spec(head.base, previews, number))
    check_mounts(plane, spec)
    check_server(plane, spec)
    await require_grants(plane.db, name, env, spec.domains, grant_to_ask(spec.domains[0]))
    claim = await claimed(plane, spec, env)
    if claim:
        raise PipelineError(f"preview {env} of {name} {claim}; nothing was deployed")
    body = json.dumps(
        {"commit": commit, "env": env, "spec": spec.model_dump(mode="json")}, sort_keys=True
    )
    digest = plane.vault.digest(body.encode())
    return Resolved(app, env, commit, commit, spec, frozenset(), digest, spec.build is None)
