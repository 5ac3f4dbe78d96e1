"""Release images: the last ``KEEP_RELEASES`` of each app kept on the engine for rollback,
and registry images (``deploy APP --image REF`` and app.yml's ``image:``) pinned to a
digest and pulled with the app's own registry credentials."""

from __future__ import annotations

import asyncio

from core.appspec import AppSpec
from core.deploy.registry import RegistryError, credentials_for, explain, is_pinned, parse_reference
from core.deploy.spec import image_ref, release_of
from core.deploy.verdicts import KEEP_RELEASES
from core.errors import DeployError
from core.plane import Plane
from core.store import Store
from core.swarm import SwarmClient


def to_prune(numbers: list[int], keep: int = KEEP_RELEASES) -> list[int]:
    """Release numbers whose images go: all but the newest ``keep``."""
    return sorted(set(numbers))[:-keep] if keep else sorted(set(numbers))


def prune(swarm: SwarmClient, store: Store, app: str) -> None:
    """Old releases' images go: their tags, and registry images pulled for them that no kept
    release runs (a rollback to one pulls it again)."""
    numbers = store.release_numbers(app)
    old = set(to_prune(numbers))
    for number in sorted(old):
        swarm.remove_image(image_ref(app, number))
    releases = store.releases(app, None, limit=len(numbers))
    kept = {r.image for r in releases if r.number not in old}
    for image in {r.image for r in releases if r.number in old and is_pinned(r.image)} - kept:
        swarm.remove_image(image)


def release_image(spec: AppSpec, app: str, number: int, app_image: bool) -> str:
    """What a release runs: an ``--image`` by the digest ``resolve`` pinned it to, else the
    release's own tag (a build, or app.yml's ``image:`` pulled by its digest and tagged)."""
    pinned = spec.image and is_pinned(spec.image) and not app_image
    return spec.image if pinned else image_ref(app, number)


def login_for(plane: Plane, app: str, image: str) -> dict[str, str]:
    """The credentials ``app`` pulls ``image`` with; ``{}`` (anonymous), never the host's
    own docker login, so one app cannot borrow what the host may pull."""
    registry = parse_reference(image).registry
    return credentials_for(plane.store, plane.vault, app, registry) or {}


async def pin(
    plane: Plane, app: str, text: str, source: str = "--image", server: str | None = None
) -> str:
    """``text`` (by tag or by digest) as the digest its registry serves now, asked with
    ``app``'s credentials through the engine of ``server`` (the one the release runs on; by
    default the control plane's own): what a release runs and an approval binds to. No copy
    on the engine stands in for the registry's answer, so an image id or an image only the
    engine has is refused like a missing one."""
    reference = parse_reference(text)
    if release_of(str(reference)) is not None:
        raise RegistryError(
            f"{text} is a shipbot release image; {source} takes an image from a registry "
            "(a release of this app comes back with `rollback`), nothing was changed"
        )
    auth = await asyncio.to_thread(login_for, plane, app, text)
    swarm = await plane.servers.client(server or plane.server)
    try:
        digest = await asyncio.to_thread(swarm.registry_digest, str(reference), auth)
    except DeployError as exc:
        raise explain(str(reference), reference.registry, str(exc), bool(auth)) from exc
    if reference.digest and digest != reference.digest:
        raise RegistryError(
            f"the registry {reference.registry} serves {digest} for {text}, not the digest "
            "asked for; nothing was changed"
        )
    return reference.pinned(digest)


async def pin_spec(plane: Plane, app: str, spec: AppSpec) -> AppSpec:
    """app.yml's ``image:`` pinned like ``--image``: checked against its registry with the
    app's own login, by the digest served now (so an approval covers the content)."""
    if spec.image is None or spec.build is not None:
        return spec
    pinned = await pin(plane, app, spec.image, "app.yml's `image:`", spec.server)
    return spec.model_copy(update={"image": pinned})


async def fetch(plane: Plane, swarm: SwarmClient, app: str, image: str) -> dict[str, str]:
    """Pull a pinned registry image with ``app``'s credentials, asking the registry first
    (the engine answers a pull by digest from its cache even when the registry refuses: a
    copy another app pulled must not stand in for access), and return those credentials
    for Swarm's nodes."""
    auth = await asyncio.to_thread(login_for, plane, app, image)
    try:
        await asyncio.to_thread(swarm.registry_digest, image, auth)
        await asyncio.to_thread(swarm.pull, image, auth)
    except DeployError as exc:
        raise explain(image, parse_reference(image).registry, str(exc), bool(auth)) from exc
    return auth
