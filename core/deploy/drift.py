"""Drift: what the store says is deployed against what a server runs.

For every app and environment with a live release, the store holds the exact service spec it
ran (sealed, with the replica count ``scale`` last set). ``compare`` reads it against the
service Swarm has now and names each difference: the service missing, another image, another
replica count, another release label, the rest of the spec changed (env, args, health check,
mounts, limits, labels, ports, placement: a keyed digest of those parts, and which parts), a
labelled service of a registered app with no live release, and a release whose outcome is
still ``unknown``. Services of apps the store does not know belong to someone else on a shared
engine and are left alone. Apps with a change under way (a release deploying, a scale or
restart running) are skipped: they are moving on purpose.

``compare`` is pure; ``detect`` reads the store and the server, in one services call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from core.deploy.reconcile import reconcile
from core.deploy.seal import unseal
from core.errors import CoreError
from core.names import LABEL_APP, LABEL_ENV, LABEL_PLANE, LABEL_RELEASE, service_name
from core.ownership import mine
from core.plane import Plane
from core.servers.where import servers_in_use
from core.store import RELEASE_DEPLOYING, RELEASE_LIVE, RELEASE_UNKNOWN, Release
from core.swarm import comparable_image

MISSING = "service missing"
IMAGE = "image differs"
REPLICAS = "replicas differ"
RELEASE = "release differs"
SPEC = "spec differs"
ORPHAN = "no release"
UNKNOWN = "release unknown"
UNREACHABLE = "server unreachable"  # the whole server: app and env are empty


@dataclass(frozen=True)
class Drift:
    server: str
    app: str
    env: str
    kind: str
    detail: str

    @property
    def key(self) -> str:
        """What stays the same while this difference stands (the detail may change)."""
        return f"{self.server}/{self.app}/{self.env}/{self.kind}"


def image_of(spec: dict[str, Any]) -> str:
    return spec.get("TaskTemplate", {}).get("ContainerSpec", {}).get("Image", "")


def same_image(running: str, recorded: str) -> bool:
    """Like with like: the tag Swarm pinned a digest to is the release's tag; a registry
    image deployed by digest alone is compared by that digest."""
    return comparable_image(running) == comparable_image(recorded)


def replicas_of(spec: dict[str, Any]) -> int | None:
    return spec.get("Mode", {}).get("Replicated", {}).get("Replicas")


def parts(spec: dict[str, Any]) -> dict[str, Any]:
    """The parts of a service spec that decide how its tasks run, in one shape whether the
    spec is the one shipbot built or the one the engine hands back (which adds defaults).
    Image, replicas and the release label are compared on their own; the update counter
    ``restart`` bumps is no difference."""
    template = spec.get("TaskTemplate", {})
    container = template.get("ContainerSpec", {})
    mounts = [
        [m.get("Type", "volume"), m.get("Source", ""), m.get("Target", ""), bool(m.get("ReadOnly"))]
        for m in container.get("Mounts") or []
    ]
    ports = [
        [
            p.get("Protocol", "tcp"),
            p.get("TargetPort"),
            p.get("PublishedPort"),
            p.get("PublishMode"),
        ]
        for p in spec.get("EndpointSpec", {}).get("Ports") or []
    ]
    labels = {
        k: v for k, v in (spec.get("Labels") or {}).items() if k not in (LABEL_RELEASE, LABEL_PLANE)
    }
    return {
        "env": dict(item.partition("=")[::2] for item in container.get("Env") or []),
        "args": container.get("Args") or [],
        "command": container.get("Command") or [],
        # the engine omits a zero field (no start period: no "StartPeriod"), as it omits Retries 0
        "healthcheck": {k: v for k, v in (container.get("Healthcheck") or {}).items() if v},
        "mounts": sorted(mounts),
        "limits": {
            k: v for k, v in (template.get("Resources", {}).get("Limits") or {}).items() if v
        },
        "labels": labels,
        "ports": sorted(ports, key=json.dumps),
        "placement": sorted((template.get("Placement") or {}).get("Constraints") or []),
        "stop_grace_period": container.get("StopGracePeriod"),
    }


def spec_digest(spec: dict[str, Any], digest: Callable[[bytes], str]) -> str:
    """A keyed digest of ``parts``: equal specs, equal digests; no help guessing the
    secrets in the env."""
    return digest(json.dumps(parts(spec), sort_keys=True).encode())


def env_changes(stored: dict[str, str], running: dict[str, str]) -> list[str]:
    """Which variables differ, by name only (values may be secrets)."""
    added = [f"{k} added" for k in sorted(running.keys() - stored.keys())]
    removed = [f"{k} removed" for k in sorted(stored.keys() - running.keys())]
    changed = [
        f"{k} changed" for k in sorted(stored.keys() & running.keys()) if stored[k] != running[k]
    ]
    return added + removed + changed


def _spec_drift(
    stored: dict[str, Any], running: dict[str, Any], digest: Callable[[bytes], str]
) -> str | None:
    want, have = parts(stored), parts(running)
    if want == have:
        return None
    which = []
    for part in want:
        if want[part] == have[part]:
            continue
        if part == "env":
            which.append(f"env ({', '.join(env_changes(want['env'], have['env']))})")
        else:
            which.append(part.replace("_", " "))
    return (
        f"{', '.join(which)} changed outside shipbot (spec {spec_digest(running, digest)}, "
        f"the release's {spec_digest(stored, digest)})"
    )


def compare_one(
    server: str,
    release: Release,
    stored: dict[str, Any],
    service: dict[str, Any] | None,
    digest: Callable[[bytes], str],
) -> list[Drift]:
    """One live release (its spec unsealed as ``stored``) against its service."""
    app, env, number = release.app, release.env, release.number

    def found(kind: str, detail: str) -> Drift:
        return Drift(server, app, env, kind, detail)

    if service is None:
        return [
            found(
                MISSING,
                f"{service_name(app, env)} is not on {server}, yet release {number} is live "
                f"in the store: `deploy {app}` or `rollback {app}` puts it back",
            )
        ]
    spec = service["Spec"]
    out = []
    if not same_image(image_of(spec), release.image):
        shown = comparable_image(image_of(spec))
        out.append(found(IMAGE, f"runs {shown}; release {number} is {release.image}"))
    label = spec.get("Labels", {}).get(LABEL_RELEASE)
    if label != str(number):
        out.append(found(RELEASE, f"labelled release {label}; the store's live one is {number}"))
    if not stored:  # a release recorded before its spec was kept: nothing more to compare
        return out
    want, have = replicas_of(stored), replicas_of(spec)
    if want != have:
        tasks = "task" if have == 1 else "tasks"
        out.append(found(REPLICAS, f"Swarm wants {have} {tasks}; the store says {want}"))
    changed = _spec_drift(stored, spec, digest)
    if changed:
        out.append(found(SPEC, changed))
    return out


def compare(
    server: str,
    apps: Iterable[str],
    releases: Iterable[Release],
    services: Iterable[dict[str, Any]],
    unseal_spec: Callable[[dict[str, Any]], dict[str, Any]],
    digest: Callable[[bytes], str],
    busy: Iterable[tuple[str, str]] = (),
    plane_id: str | None = None,
) -> list[Drift]:
    """Pure: every difference between the store's ``releases`` (live and unknown ones, of
    registered ``apps``) and the ``services`` one server runs, sorted; ``busy`` app and
    environment pairs are moving on purpose and skipped."""
    known, skip = set(apps), set(busy)
    by_name = {s["Spec"]["Name"]: s for s in mine(services, plane_id, known)}
    out: list[Drift] = []
    covered: set[str] = set()
    releases = list(releases)
    # an unknown outcome is the finding: the service may well run that release already
    unsettled = {(r.app, r.env) for r in releases if r.status == RELEASE_UNKNOWN}
    for release in releases:
        if release.app not in known or (release.app, release.env) in skip:
            continue
        name = service_name(release.app, release.env)
        covered.add(name)
        if release.status == RELEASE_UNKNOWN:
            out.append(
                Drift(
                    server,
                    release.app,
                    release.env,
                    UNKNOWN,
                    f"nobody saw release {release.number} finish and Swarm has not settled it "
                    f"yet: `releases {release.app}` reads it back when it has",
                )
            )
        elif release.status == RELEASE_LIVE and (release.app, release.env) not in unsettled:
            stored = unseal_spec(release.spec) if release.spec else {}
            out += compare_one(server, release, stored, by_name.get(name), digest)
    for name, service in by_name.items():
        labels = service["Spec"].get("Labels", {})
        app, env = labels[LABEL_APP], labels.get(LABEL_ENV, "?")
        if name in covered or (app, env) in skip:
            continue
        out.append(
            Drift(
                server,
                app,
                env,
                ORPHAN,
                f"{name} carries shipbot's labels (release {labels.get(LABEL_RELEASE, '?')}) "
                f"but the store has no live release of {app} on {env}",
            )
        )
    return sorted(out, key=lambda d: (d.app, d.env, d.kind))


async def detect(plane: Plane, app: str | None = None) -> list[Drift]:
    """The differences on every server in use (of ``app``'s environments when given), and
    one ``UNREACHABLE`` row for each server that did not answer. Unknown releases are read
    back from Swarm first, as ``status`` does."""
    with contextlib.suppress(CoreError):  # a server away: its own row below says so
        await reconcile(plane, app)
    apps = {a.name for a in await plane.db.in_thread(lambda: plane.store.list_apps())}
    releases = [
        *await plane.db.in_thread(lambda: plane.store.releases_with_status(RELEASE_LIVE, app)),
        *await plane.db.in_thread(lambda: plane.store.releases_with_status(RELEASE_UNKNOWN, app)),
    ]
    busy = {
        (r.app, r.env)
        for r in await plane.db.in_thread(
            lambda: plane.store.releases_with_status(RELEASE_DEPLOYING, app)
        )
    }
    busy |= set(await plane.db.in_thread(lambda: plane.store.changes_running()))
    placed = {
        (a, e): s for a, e, s in await plane.db.in_thread(lambda: plane.store.env_server_rows())
    }
    found: list[Drift] = []
    for server in await servers_in_use(plane):  # each server with the releases it runs
        try:  # one server away is named once; the others are still compared
            swarm = await plane.servers.client(server)
            services = await asyncio.to_thread(swarm.services, app)
        except CoreError as exc:
            found.append(Drift(server, "", "", UNREACHABLE, f"{server} unreachable: {exc}"))
            continue
        here = [r for r in releases if placed.get((r.app, r.env), plane.server) == server]
        found += compare(
            server,
            apps,
            here,
            services,
            lambda spec: unseal(spec, plane.vault.decrypt),
            plane.vault.digest,
            busy,
            plane.id,
        )
    return found
