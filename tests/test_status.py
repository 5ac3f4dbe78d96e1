"""status over many services: one services list and one tasks list, grouped in memory."""

from __future__ import annotations

import time
from pathlib import Path

from cryptography.fernet import Fernet

from core.deploy.deploy import deploy
from core.deploy.resolve import resolve
from core.deploy.status import ServiceStatus, status, summarize
from core.plane import Plane
from core.secrets import Vault
from core.store import App, Store
from core.swarm.servers import Servers
from tests.clock import SwarmSteps
from tests.fake_plane import drain, fast_swarm
from tests.fast_plane import register


def svc(id_: str, app: str, env: str = "production", replicas: int = 2, **extra) -> dict:
    return {
        "ID": id_,
        "Spec": {
            "Name": f"{app}-{env}",
            "Labels": {"shipbot.app": app, "shipbot.env": env, "shipbot.release": "4"},
            "TaskTemplate": {"ContainerSpec": {"Image": f"shipbot/{app}:4", **extra}},
            "Mode": {"Replicated": {"Replicas": replicas}},
        },
        **({"UpdateStatus": {"State": "updating"}} if app == "api" else {}),
    }


def task(service: str, state: str = "running", desired: str = "running") -> dict:
    return {"ServiceID": service, "DesiredState": desired, "Status": {"State": state}}


def test_summarize_counts_each_services_running_tasks_from_one_list():
    services = [
        svc("s1", "web", Healthcheck={"Test": ["CMD", "true"]}),
        svc("s2", "api", "staging", replicas=3),
        svc("s3", "theirs"),  # another control plane's app on this engine
    ]
    tasks = [
        task("s1"),
        task("s1"),
        task("s1", "shutdown", "shutdown"),  # an old task Swarm keeps in its history
        task("s2", "starting"),
        task("s2"),
        task("s3"),
    ]
    assert summarize(services, tasks, {"web", "api"}) == [
        ServiceStatus("api", "staging", "4", 1, 3, False, "updating"),
        ServiceStatus("web", "production", "4", 2, 2, True, None),
    ]


async def test_status_of_many_apps_is_two_calls_to_the_swarm(tmp_path: Path):
    fake = fast_swarm()
    store = Store(tmp_path / "shipbot.db")
    names = [f"app{i}" for i in range(12)]
    for name in names:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "app.yml").write_text(f"name: {name}\nimage: web:1\nreplicas: 2\n")
        register(store, App(name, "path", str(folder), None, "console:alice", time.time()))
    plane = Plane(
        store,
        Vault(Fernet.generate_key()),
        Servers({"local": lambda: fake}),
        tmp_path,
        clock=SwarmSteps(fake),
    )
    for name in names:
        events = await drain(deploy(plane, await resolve(plane, name, None, "1"), user="console:a"))
        assert events[-1].ok
    fake.calls.clear()
    rows = await status(plane)
    assert fake.calls == ["services", "live_tasks"]
    assert [(r.app, r.running, r.desired) for r in rows] == [(n, 2, 2) for n in sorted(names)]
    fake.calls.clear()
    (one,) = await status(plane, "app3")
    assert (one.app, one.running, fake.calls) == ("app3", 2, ["services", "live_tasks"])
    store.close()
