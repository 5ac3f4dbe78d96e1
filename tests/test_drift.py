"""Drift: the pure comparison exactly, then through the fake swarm, the chat and the watcher."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import hashlib
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from commands.replies import Message, Table
from core.config import ControlConfig, NotifyRoute
from core.deploy import adjust
from core.deploy.deploy import deploy
from core.deploy.drift import (
    IMAGE,
    MISSING,
    ORPHAN,
    RELEASE,
    REPLICAS,
    SPEC,
    UNKNOWN,
    Drift,
    compare,
    detect,
    env_changes,
    parts,
    spec_digest,
)
from core.deploy.resolve import resolve
from core.deploy.seal import seal, unseal
from core.errors import EngineUnavailable
from core.plane import Plane
from core.secrets import Vault
from core.store import App, Release, Store
from core.swarm.servers import Servers
from core.watch.drift import DriftWatch, Post, step
from rooms.root import housekeeping
from tests.chat import say
from tests.clock import SwarmSteps
from tests.fake_plane import WEB, drain, fast_swarm
from tests.fast_plane import dispatcher, register


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:8]


def spec(image: str = "shipbot/web:3", replicas: int = 2, release: int = 3, **container) -> dict:
    return {
        "Name": "web-production",
        "Labels": {
            "shipbot.app": "web",
            "shipbot.env": "production",
            "shipbot.release": str(release),
        },
        "TaskTemplate": {
            "ContainerSpec": {"Image": image, "Env": ["A=1", "B=2"], **container},
            "ForceUpdate": 0,
        },
        "Mode": {"Replicated": {"Replicas": replicas}},
    }


def release(number: int = 3, status: str = "live", stored: dict | None = None) -> Release:
    return Release(
        id=number, app="web", env="production", number=number, image=f"shipbot/web:{number}",
        image_id=None, source_ref=None, spec=spec() if stored is None else stored,
        status=status, deployed_by="console:alice", created_at=0.0, finished_at=0.0,
        message=None,
    )  # fmt: skip


def service(s: dict) -> dict:
    return {"ID": "svc1", "Spec": s}


def check(releases, services, apps=("web",), busy=()) -> list[Drift]:
    return compare("local", apps, releases, services, lambda s: s, digest, busy)


def test_the_service_shipbot_deployed_is_no_drift():
    assert check([release()], [service(spec())]) == []


def test_what_the_engine_adds_to_a_spec_is_no_drift():
    engine = spec(image="shipbot/web:3@sha256:" + "a" * 64, Isolation="default", Mounts=[])
    engine["TaskTemplate"] |= {"Resources": {"Limits": {}, "Reservations": {}}, "ForceUpdate": 4}
    engine["TaskTemplate"]["Placement"] = {"Platforms": [{"OS": "linux"}]}
    engine["EndpointSpec"] = {"Mode": "dnsrr"}
    assert parts(engine) == parts(spec())
    assert check([release()], [service(engine)]) == []


def test_a_health_check_with_no_start_period_is_no_drift_once_the_engine_dropped_the_zero():
    built = {"Test": ["CMD", "true"], "Interval": 10**9, "Timeout": 2 * 10**9, "Retries": 3}
    stored = spec(Healthcheck=built | {"StartPeriod": 0})
    assert check([release(stored=stored)], [service(spec(Healthcheck=built))]) == []
    changed = spec(Healthcheck=built | {"Retries": 5})
    [found] = check([release(stored=stored)], [service(changed)])
    assert found.kind == SPEC
    assert found.detail.startswith("healthcheck changed outside shipbot (")


def test_service_missing():
    assert check([release()], []) == [
        Drift(
            "local", "web", "production", MISSING,
            "web-production is not on local, yet release 3 is live in the store: `deploy web` "
            "or `rollback web` puts it back",
        )
    ]  # fmt: skip


def test_image_and_release_label_differ():
    running = spec(image="busybox:latest", release=2)
    assert check([release()], [service(running)]) == [
        Drift(
            "local", "web", "production", IMAGE, "runs busybox:latest; release 3 is shipbot/web:3"
        ),
        Drift(
            "local", "web", "production", RELEASE, "labelled release 2; the store's live one is 3"
        ),
    ]


def test_replicas_differ():
    assert check([release()], [service(spec(replicas=5))]) == [
        Drift("local", "web", "production", REPLICAS, "Swarm wants 5 tasks; the store says 2")
    ]


def test_spec_differs_names_the_parts_and_variables_never_values():
    running = spec(Args=["sh", "-c", "evil"])
    running["TaskTemplate"]["ContainerSpec"]["Env"] = ["A=1", "B=secret-changed", "C=3"]
    (found,) = check([release()], [service(running)])
    assert (found.kind, found.detail) == (
        SPEC,
        f"env (C added, B changed), args changed outside shipbot (spec "
        f"{spec_digest(running, digest)}, the release's {spec_digest(spec(), digest)})",
    )
    assert "secret-changed" not in found.detail
    assert env_changes({"A": "1", "B": "2"}, {"B": "2"}) == ["A removed"]


def test_sealed_secrets_are_compared_unsealed():
    vault = Vault(Fernet.generate_key())
    sealed = seal(spec(), {"B"}, vault.encrypt)
    assert sealed != spec()
    found = compare(
        "local", ["web"], [release(stored=sealed)], [service(spec())],
        lambda s: unseal(s, vault.decrypt),
        vault.digest,
    )  # fmt: skip
    assert found == []


def test_labelled_service_with_no_release_and_others_services():
    staging = spec(release=7)
    staging["Name"] = "web-staging"
    staging["Labels"]["shipbot.env"] = "staging"
    theirs = copy.deepcopy(spec())
    theirs["Name"] = "shop-production"
    theirs["Labels"]["shipbot.app"] = "shop"  # another control plane's app on this engine
    assert check([release()], [service(spec()), service(staging), service(theirs)]) == [
        Drift(
            "local", "web", "staging", ORPHAN,
            "web-staging carries shipbot's labels (release 7) but the store has no live "
            "release of web on staging",
        )
    ]  # fmt: skip


def test_unknown_release_and_busy_apps():
    unknown = release(4, status="unknown")
    assert check([release(), unknown], [service(spec())]) == [
        Drift(
            "local", "web", "production", UNKNOWN,
            "nobody saw release 4 finish and Swarm has not settled it yet: `releases web` reads "
            "it back when it has",
        )
    ]  # fmt: skip
    # the service runs the unknown release: that is the one finding, not an image too
    running = service(spec(image="shipbot/web:4", release=4))
    assert [d.kind for d in check([release(), unknown], [running])] == [UNKNOWN]
    assert check([release()], [], busy=[("web", "production")]) == []


def test_a_release_recorded_without_its_spec_compares_image_and_label_only():
    assert check([release(stored={})], [service(spec(replicas=9))]) == []


# through a plane on the fake swarm


@pytest.fixture
def fake():
    return fast_swarm()


@pytest.fixture
def plane(tmp_path: Path, fake):
    store = Store(tmp_path / "shipbot.db")
    folder = tmp_path / "web"
    folder.mkdir()
    (folder / "app.yml").write_text(WEB + "env: {GREETING: hi}\n")
    register(store, App("web", "path", str(folder), None, "console:alice", time.time()))
    yield Plane(
        store,
        Vault(Fernet.generate_key()),
        Servers({"local": lambda: fake}),
        tmp_path,
        clock=SwarmSteps(fake),
    )
    store.close()


async def deployed(plane: Plane) -> None:
    events = await drain(deploy(plane, await resolve(plane, "web", None, "1"), user="console:a"))
    assert events[-1].ok, events


async def test_detect_on_the_fake_swarm(plane, fake):
    await deployed(plane)
    assert await detect(plane) == []
    # shipbot's own scale is recorded with the release: no drift
    events = await drain(adjust.scale(plane, "web", "production", 3, user="console:a"))
    assert events[-1].ok
    assert await detect(plane) == []
    # someone changes the variable by hand
    changed = fake.inspect_service("web-production")["Spec"]
    changed["TaskTemplate"]["ContainerSpec"]["Env"] = ["GREETING=bye"]
    fake.update_service(changed)
    fake.settle()
    (found,) = await detect(plane)
    assert found.kind == SPEC and found.detail.startswith("env (GREETING changed) changed")
    fake.remove_service("web-production")
    assert [d.kind for d in await detect(plane, "web")] == [MISSING]


async def test_status_drift_in_the_chat_shows_only_what_the_user_may_see(tmp_path):
    swarm = fast_swarm()
    bot = dispatcher(tmp_path, swarm, ["console:alice"])
    folder = tmp_path / "web"
    folder.mkdir()
    (folder / "app.yml").write_text(WEB)
    await say(bot, f"apps add web --path {folder}")
    await say(bot, "deploy web 1")
    assert [r.text for r in await say(bot, "status --drift")] == [
        "no drift: the swarm runs what shipbot deployed"
    ]
    swarm.remove_service("web-production")
    (shown,) = await say(bot, "status --drift")
    assert isinstance(shown, Table)
    assert shown.rows[0][:4] == ("web", "production", "local", MISSING)
    await say(bot, "grant console:bob viewer --app other")
    hidden = await say(bot, "status --drift", "console:bob")
    assert hidden == [Message("no drift: the swarm runs what shipbot deployed")]
    bot.close()


# the watcher: each difference posted once, closed once


def test_step_posts_new_and_gone_differences_once():
    image = Drift("local", "web", "production", IMAGE, "runs a; release 3 is b")
    moved = Drift("local", "web", "production", IMAGE, "runs c; release 3 is b")
    gone = Drift("local", "api", "staging", MISSING, "api-staging is not on local")
    posts, open_ = step([image], {gone.key: gone})
    assert posts == [
        Post(
            "web", "production",
            "⚠️ drift on local: web (production) image differs: runs a; release 3 is b. "
            "`status --drift` lists every difference",
        ),
        Post(
            "api", "staging",
            "✅ api (staging) on local matches the store again (service missing no more)",
        ),
    ]  # fmt: skip
    assert open_ == [image]
    assert step([moved], {image.key: image}) == ([], [image])


async def test_drift_watch_keeps_its_findings_across_restarts(tmp_path):
    found: list[Drift] = [Drift("local", "web", "production", REPLICAS, "Swarm wants 1")]
    published: list[Post] = []

    async def find() -> list[Drift]:
        return list(found)

    store = Store(tmp_path / "shipbot.db")
    assert len(await DriftWatch(store, find, published.append).check()) == 1
    store.close()
    store = Store(tmp_path / "shipbot.db")  # a restart: nothing posted twice
    assert await DriftWatch(store, find, published.append).check() == []
    found.clear()
    (closed,) = await DriftWatch(store, find, published.append).check()
    assert closed.text.startswith("✅ web (production)")
    assert len(published) == 2
    store.close()


async def test_drift_watch_skips_a_round_when_the_engine_is_away(tmp_path):
    async def away() -> list[Drift]:
        raise EngineUnavailable("the Docker engine stopped answering")

    store = Store(tmp_path / "shipbot.db")
    store.save_drift_states([{"key": "k", "server": "local", "app": "web", "env": "p",
                              "kind": MISSING, "detail": "d"}])  # fmt: skip
    assert await DriftWatch(store, away, lambda post: None).check() == []
    assert [row["key"] for row in store.drift_states()] == ["k"]
    store.close()


async def test_serve_checks_drift_at_start_and_posts_to_the_alert_channels(tmp_path):
    swarm = fast_swarm()
    bot = dispatcher(tmp_path, swarm, ["console:alice"])
    folder = tmp_path / "web"
    folder.mkdir()
    (folder / "app.yml").write_text(WEB)
    await say(bot, f"apps add web --path {folder}")
    await say(bot, "deploy web 1")
    swarm.remove_service("web-production")
    bot.config = ControlConfig(
        admins=["console:alice"],
        notify=[NotifyRoute(platform="console", channel="ops", kinds=["alerts"])],
    )
    bot.notifier.routes = list(bot.config.notify)
    task = asyncio.create_task(housekeeping(bot, interval=0.01))
    try:
        for _ in range(500):
            queued = bot.engine.store.due_messages("console", time.time() + 1)
            if queued:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert [(m["channel"], m["kind"]) for m in queued] == [("ops", "alerts")]
    assert "web (production) service missing" in queued[0]["payload"]
    assert [row["kind"] for row in bot.engine.store.drift_states()] == [MISSING]
    bot.close()


def test_a_release_by_digest_or_by_tag_is_no_drift_when_swarm_runs_exactly_it():
    """Swarm's spec keeps the digest it pinned: like is compared with like."""
    pinned = "127.0.0.1:5000/team/app@sha256:" + "a" * 64
    by_digest = dataclasses.replace(release(), image=pinned, spec=spec(image=pinned))
    assert check([by_digest], [service(spec(image=pinned))]) == []
    tagged = spec(image="shipbot/web:3@sha256:" + "b" * 64)  # the tag, pinned by Swarm
    assert check([release()], [service(tagged)]) == []
    other = "127.0.0.1:5000/team/app@sha256:" + "c" * 64
    assert [d.kind for d in check([by_digest], [service(spec(image=other))])] == [IMAGE]
