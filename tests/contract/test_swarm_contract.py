"""The swarm contract: what the product relies on from ``SwarmClient``, asserted once and run
against the in-memory ``FakeSwarm`` and against the real engine (the docker tier), so the
fake cannot tell a different story. Where they differed, the fake was fixed."""

from __future__ import annotations

import pytest

from core.appspec import parse_app_config
from core.deploy.spec import service_spec, with_replicas
from core.errors import DeployError
from core.names import LABEL_APP, LABEL_MANAGED, LABEL_PLANE, network_name, service_name
from core.process import LABEL_OWNER, this_process
from core.swarm import NetworkInUse, comparable_image, running_tasks
from core.swarm.jobs import LABEL_JOB_KIND, job_labels, job_spec
from tests.contract.world import World, job_command

ENV = "production"
ENDED = {"complete", "failed", "rejected", "shutdown"}


def app_spec(world: World, image: str, replicas: int = 2, release: int = 1) -> dict:
    """The ServiceSpec the product builds (core/deploy/spec.py) for a small web app."""
    app = world.prefix
    text = f"""\
name: {app}
image: {image}
replicas: {replicas}
stop_grace_period: 1s
healthcheck: {{cmd: ["wget", "-qO-", "http://127.0.0.1:8080/"], interval: 1s, timeout: 1s,
  retries: 2}}
"""
    return service_spec(parse_app_config(text).for_env(ENV), ENV, release, image)


def launch(world: World, spec: dict) -> list[dict]:
    """Creates the service (and its network) and waits until every replica runs."""
    world.swarm.ensure_network(network_name(world.prefix, ENV))
    world.swarm.create_service(spec)
    replicas = spec["Mode"]["Replicated"]["Replicas"]
    return world.until(
        lambda: len(live := running_tasks(world.swarm.tasks(spec["Name"]))) == replicas and live,
        f"{replicas} running tasks",
    )


def update_state(world: World, name: str) -> str | None:
    service = world.swarm.inspect_service(name)
    assert service is not None
    return (service.get("UpdateStatus") or {}).get("State")


def images_of(tasks: list[dict]) -> list[str]:
    return sorted(comparable_image(t["Spec"]["ContainerSpec"]["Image"]) for t in tasks)


def test_a_created_service_is_inspected_and_listed_by_its_app(world: World):
    image = world.image("healthy")
    spec = app_spec(world, image)
    name = spec["Name"]
    assert name == service_name(world.prefix, ENV)
    assert world.swarm.inspect_service(name) is None
    launch(world, spec)
    view = world.swarm.inspect_service(name)
    assert view is not None
    assert view["Spec"]["Name"] == name
    assert view["Spec"]["Labels"] == spec["Labels"]
    assert view["Spec"]["Mode"] == {"Replicated": {"Replicas": 2}}
    assert view["Spec"]["UpdateConfig"]["FailureAction"] == "rollback"
    assert comparable_image(view["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]) == image
    assert isinstance(view["Version"]["Index"], int)
    assert view["CreatedAt"].endswith("Z") and view["UpdatedAt"].endswith("Z")
    assert "UpdateStatus" not in view and "PreviousSpec" not in view
    assert [s["Spec"]["Name"] for s in world.swarm.services(world.prefix)] == [name]
    assert world.swarm.services(f"{world.prefix}x") == []
    assert name in [s["Spec"]["Name"] for s in world.swarm.services()]
    with pytest.raises(DeployError):
        world.swarm.create_service(spec)


def test_running_tasks_have_slots_containers_and_a_healthy_check(world: World):
    spec = app_spec(world, world.image("healthy"))
    tasks = launch(world, spec)
    assert sorted(t["Slot"] for t in tasks) == [1, 2]
    service_id = world.swarm.inspect_service(spec["Name"])["ID"]
    for task in tasks:
        assert task["ServiceID"] == service_id
        assert task["DesiredState"] == "running"
        assert task["CreatedAt"].endswith("Z")
        container = world.swarm.inspect_container(task["Status"]["ContainerStatus"]["ContainerID"])
        assert container is not None
        assert container["State"]["Status"] == "running"
        assert world.until(
            lambda c=task["Status"]["ContainerStatus"]["ContainerID"]: (
                world.swarm.inspect_container(c)["State"]["Health"]["Status"] == "healthy"
            ),
            "a healthy container",
        )
    live = world.swarm.live_tasks(world.prefix)
    assert sorted(t["ID"] for t in live) == sorted(t["ID"] for t in tasks)
    assert world.swarm.live_tasks(f"{world.prefix}x") == []


def test_a_healthy_update_completes_and_retires_the_old_tasks(world: World):
    image = world.image("healthy")
    old = {t["ID"] for t in launch(world, app_spec(world, image))}
    spec = app_spec(world, image, release=2)
    version = world.swarm.inspect_service(spec["Name"])["Version"]["Index"]
    world.swarm.update_service(spec)
    assert update_state(world, spec["Name"]) in ("updating", "completed")
    world.until(lambda: update_state(world, spec["Name"]) == "completed", "update completed")
    view = world.swarm.inspect_service(spec["Name"])
    assert view["Version"]["Index"] > version
    assert view["UpdateStatus"]["Message"] == "update completed"
    assert view["UpdateStatus"]["StartedAt"] < view["UpdateStatus"]["CompletedAt"]
    assert view["PreviousSpec"]["Labels"]["shipbot.release"] == "1"
    assert view["Spec"]["Labels"]["shipbot.release"] == "2"
    tasks = world.swarm.tasks(spec["Name"])
    live = running_tasks(tasks)
    assert len(live) == 2 and not {t["ID"] for t in live} & old
    assert {t["Spec"]["ContainerSpec"]["Labels"]["shipbot.release"] for t in live} == {"2"}
    assert {t["DesiredState"] for t in tasks if t["ID"] in old} == {"shutdown"}
    world.until(  # stopping takes the engine its stop grace period
        lambda: (
            {t["Status"]["State"] for t in world.swarm.tasks(spec["Name"]) if t["ID"] in old}
            == {"shutdown"}
        ),
        "the old tasks shut down",
    )


def test_an_unhealthy_update_rolls_back_to_the_tasks_that_ran(world: World):
    good, bad = world.image("healthy"), world.image("unhealthy")
    before = {t["ID"] for t in launch(world, app_spec(world, good))}
    spec = app_spec(world, bad, release=2)
    world.swarm.update_service(spec)
    world.until(
        lambda: update_state(world, spec["Name"]) == "rollback_completed", "rollback completed"
    )
    view = world.swarm.inspect_service(spec["Name"])
    assert view["UpdateStatus"]["Message"] == "rollback completed"
    assert comparable_image(view["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]) == good
    assert view["Spec"]["Labels"]["shipbot.release"] == "1"
    assert "PreviousSpec" not in view  # Swarm keeps no spec before the one it rolled back to
    tasks = world.swarm.tasks(spec["Name"])
    assert {t["ID"] for t in running_tasks(tasks)} == before  # start-first: never stopped
    failed = [t for t in tasks if t["Status"]["State"] == "failed"]
    assert failed
    for task in failed:
        assert comparable_image(task["Spec"]["ContainerSpec"]["Image"]) == bad
        assert task["DesiredState"] == "shutdown"
        assert task["Status"]["Message"] == "starting"  # it never passed its check
        assert task["Status"]["Err"] == "task: non-zero exit (137): dockerexec: unhealthy container"
        assert task["Status"]["ContainerStatus"]["ExitCode"] == 137
    container = world.swarm.inspect_container(failed[0]["Status"]["ContainerStatus"]["ContainerID"])
    assert container["State"]["Status"] == "exited" and container["State"]["ExitCode"] == 137
    health = container["State"]["Health"]
    assert health["Status"] == "unhealthy"
    assert health["FailingStreak"] >= 2  # the check's retries
    assert health["Log"][-1]["ExitCode"] == 1
    assert "Connection refused" in health["Log"][-1]["Output"]


def test_a_server_exiting_0_when_stopped_for_its_check_still_fails_the_update(world: World):
    good, bad = world.image("healthy"), world.image("exits_0")
    launch(world, app_spec(world, good))
    spec = app_spec(world, bad, release=2)
    world.swarm.update_service(spec)
    world.until(
        lambda: update_state(world, spec["Name"]) == "rollback_completed", "rollback completed"
    )
    tasks = world.swarm.tasks(spec["Name"])
    assert images_of(running_tasks(tasks)) == [good, good]
    ended = [t for t in tasks if comparable_image(t["Spec"]["ContainerSpec"]["Image"]) == bad]
    assert {t["DesiredState"] for t in ended} == {"shutdown"}
    ran = [t for t in ended if t["Status"]["State"] == "complete"]  # (the engine may also
    assert ran  # shut down a task of the batch it never started: ``accepted``)
    for task in ran:  # Swarm calls it complete: only its container's health says why
        assert task["Status"]["Message"] == "finished" and "Err" not in task["Status"]
        assert task["Status"]["ContainerStatus"]["ExitCode"] == 0
    container = world.swarm.inspect_container(ran[0]["Status"]["ContainerStatus"]["ContainerID"])
    assert (container["State"]["Status"], container["State"]["ExitCode"]) == ("exited", 0)
    assert container["State"]["Health"]["Status"] == "unhealthy"
    # the probes failed (wget: 1); the last may also have been cut by the container's stop
    # (137) or, on a busy host, by its time-out (-1): whichever, not a passing probe
    assert container["State"]["Health"]["Log"][-1]["ExitCode"] in (1, 137, -1)


def test_an_unhealthy_update_pauses_when_its_failure_action_is_pause(world: World):
    good, bad = world.image("healthy"), world.image("unhealthy")
    before = {t["ID"] for t in launch(world, app_spec(world, good))}
    spec = app_spec(world, bad, release=2)
    spec["UpdateConfig"]["FailureAction"] = "pause"
    world.swarm.update_service(spec)
    world.until(lambda: update_state(world, spec["Name"]) == "paused", "update paused")
    view = world.swarm.inspect_service(spec["Name"])
    failed = [t for t in world.swarm.tasks(spec["Name"]) if t["Status"]["State"] == "failed"]
    assert failed
    assert view["UpdateStatus"]["Message"] in {
        f"update paused due to failure or early termination of task {t['ID']}" for t in failed
    }
    assert comparable_image(view["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]) == bad
    assert {t["ID"] for t in running_tasks(world.swarm.tasks(spec["Name"]))} <= before


def test_scaling_up_and_down_starts_and_stops_tasks_without_an_update(world: World):
    spec = app_spec(world, world.image("healthy"))
    before = {t["ID"] for t in launch(world, spec)}
    world.swarm.update_service(with_replicas(spec, 3))
    grown = world.until(
        lambda: len(live := running_tasks(world.swarm.tasks(spec["Name"]))) == 3 and live,
        "3 running tasks",
    )
    assert before < {t["ID"] for t in grown}  # the two kept running
    assert sorted(t["Slot"] for t in grown) == [1, 2, 3]
    view = world.swarm.inspect_service(spec["Name"])
    assert view["Spec"]["Mode"] == {"Replicated": {"Replicas": 3}}
    assert "UpdateStatus" not in view  # scaling is no rolling update
    world.swarm.update_service(with_replicas(spec, 1))
    shrunk = world.until(
        lambda: len(live := running_tasks(world.swarm.tasks(spec["Name"]))) == 1 and live,
        "1 running task",
    )
    assert shrunk[0]["ID"] in {t["ID"] for t in grown}
    wanted = [t for t in world.swarm.tasks(spec["Name"]) if t["DesiredState"] == "running"]
    assert [t["ID"] for t in wanted] == [shrunk[0]["ID"]]


def test_labels_and_the_plane_label_change_without_replacing_tasks(world: World):
    spec = app_spec(world, world.image("healthy"))
    before = {t["ID"] for t in launch(world, spec)}
    version = world.swarm.inspect_service(spec["Name"])["Version"]["Index"]
    owned = {**spec, "Labels": {**spec["Labels"], LABEL_PLANE: "plane-a", "team": "shop"}}
    world.swarm.update_service(owned)
    view = world.swarm.inspect_service(spec["Name"])
    assert view["Spec"]["Labels"][LABEL_PLANE] == "plane-a"
    assert view["Spec"]["Labels"]["team"] == "shop"
    assert view["Version"]["Index"] > version
    assert "UpdateStatus" not in view  # nor is a label
    listed = world.swarm.services(world.prefix)
    assert [s["Spec"]["Labels"][LABEL_PLANE] for s in listed] == ["plane-a"]
    assert {t["ID"] for t in running_tasks(world.swarm.tasks(spec["Name"]))} == before
    world.swarm.update_service(spec)  # the label taken away again
    view = world.swarm.inspect_service(spec["Name"])
    assert LABEL_PLANE not in view["Spec"]["Labels"]
    assert view["Spec"]["Labels"][LABEL_APP] == world.prefix
    assert {t["ID"] for t in running_tasks(world.swarm.tasks(spec["Name"]))} == before


def test_networks_are_made_once_attached_by_id_and_removed_when_free(world: World):
    spec = app_spec(world, world.image("healthy"))
    network = network_name(world.prefix, ENV)
    launch(world, spec)
    world.swarm.ensure_network(network, labels={LABEL_APP: world.prefix})  # there already
    names = world.swarm.network_names()
    assert list(names.values()).count(network) == 1
    seen = world.swarm.inspect_network(network)  # by its exact name, with its labels
    assert seen is not None and seen["Name"] == network
    assert seen["Labels"][LABEL_MANAGED] == "true"
    assert world.swarm.inspect_network(network[:-1]) is None  # a prefix names none
    attached = world.swarm.inspect_service(spec["Name"])["Spec"]["TaskTemplate"]["Networks"]
    assert [names[n["Target"]] for n in attached] == [network]
    with pytest.raises(DeployError, match="is in use by service") as refused:
        world.swarm.remove_network(network)  # refused for good: not worth waiting for
    assert not isinstance(refused.value, NetworkInUse)
    world.swarm.remove_service(spec["Name"])

    def removed() -> bool:
        try:
            world.swarm.remove_network(network)
        except NetworkInUse:
            return False
        return True

    world.until(removed, "the network free to remove")
    world.until(  # the engine lists a removed overlay network for a moment longer
        lambda: network not in world.swarm.network_names().values(), "the network gone"
    )
    assert world.swarm.inspect_network(network) is None
    world.swarm.remove_network(network)  # absent is fine


def test_an_image_is_present_tagged_and_absent_once_pruned(world: World):
    image = world.image("healthy")
    found = world.swarm.image_id(image)
    assert found is not None and found.startswith("sha256:")
    copy = f"{world.prefix}/copy:2"
    world.swarm.tag(image, copy)
    assert world.swarm.image_id(copy) == found
    world.swarm.remove_image(copy)
    assert world.swarm.image_id(copy) is None
    assert world.swarm.image_id(image) == found  # its other tag keeps it
    world.swarm.remove_image(copy)  # absent is fine
    with pytest.raises(DeployError):
        world.swarm.tag(f"{world.prefix}/gone:1", copy)


def test_a_service_on_a_pruned_image_has_its_tasks_rejected(world: World):
    image = world.image("healthy")
    image = f"{image.rsplit(':', 1)[0]}:pruned"  # its repository is there, this tag is not
    spec = app_spec(world, image)
    world.swarm.ensure_network(network_name(world.prefix, ENV))
    world.swarm.create_service(spec)
    rejected = world.until(
        lambda: [t for t in world.swarm.tasks(spec["Name"]) if t["Status"]["State"] == "rejected"],
        "a rejected task",
    )
    status = rejected[0]["Status"]
    assert rejected[0]["DesiredState"] == "shutdown"
    assert (status["Message"], status["Err"]) == ("preparing", f"No such image: {image}")
    assert status["ContainerStatus"]["ContainerID"] == ""
    assert running_tasks(world.swarm.tasks(spec["Name"])) == []


@pytest.mark.parametrize(("code", "state"), [(0, "complete"), (3, "failed")])
def test_a_job_runs_once_and_ends_with_its_exit_code(world: World, code: int, state: str):
    service = app_spec(world, world.image("healthy"))
    world.swarm.ensure_network(network_name(world.prefix, ENV))
    argv, env = job_command(code, f"migrated {code}")
    name = f"{service['Name']}_release-1"
    labels = job_labels(world.prefix, ENV, "release")
    spec = job_spec(service, name, argv, labels)
    spec["TaskTemplate"]["ContainerSpec"]["Env"] = [f"{k}={v}" for k, v in env.items()]
    world.swarm.create_service(spec)
    ended = world.until(
        lambda: [t for t in world.swarm.tasks(name) if t["Status"]["State"] in ENDED],
        "the job's task ended",
    )
    task = ended[0]
    # done, a job wants nothing more; failed, it is shut down
    assert task["DesiredState"] == ("complete" if code == 0 else "shutdown")
    assert task["Status"]["Message"] == ("finished" if code == 0 else "started")
    assert len(world.swarm.tasks(name)) == 1  # one attempt, never restarted
    assert task["Status"]["State"] == state
    assert task["Status"]["ContainerStatus"]["ExitCode"] == code
    if code:
        assert task["Status"]["Err"] == f"task: non-zero exit ({code})"
    assert [line for _, _, line in world.swarm.service_logs(name, 10)] == [f"migrated {code}"]
    assert world.swarm.services(world.prefix) == []  # a job is never one of the app's services
    assert world.swarm.live_tasks(world.prefix) == []


def test_a_removed_service_is_gone_and_removing_it_again_is_fine(world: World):
    spec = app_spec(world, world.image("healthy"))
    launch(world, spec)
    world.swarm.remove_service(spec["Name"])
    assert world.swarm.inspect_service(spec["Name"]) is None
    assert world.swarm.services(world.prefix) == []
    with pytest.raises(DeployError, match="not found"):
        world.swarm.tasks(spec["Name"])
    world.swarm.remove_service(spec["Name"])  # absent is fine


def test_a_job_is_listed_by_its_label_not_with_the_apps(world: World):
    """What the sweep relies on (core/watch/sweep.py): helpers and jobs, which carry no app
    label, are listed by their own, with their creation time and labels."""
    service = app_spec(world, world.image("healthy"))
    world.swarm.ensure_network(network_name(world.prefix, ENV))
    name = f"{service['Name']}_run-7"
    labels = {**job_labels(world.prefix, ENV, "run"), LABEL_PLANE: world.prefix}
    world.swarm.create_service(job_spec(service, name, ["true"], labels))
    listed = [s for s in world.swarm.services_labelled(LABEL_JOB_KIND) if s["Spec"]["Name"] == name]
    # with the process that made it, so a crash's leftover is told from live work
    assert [s["Spec"]["Labels"] for s in listed] == [{**labels, LABEL_OWNER: this_process()}]
    assert listed[0]["CreatedAt"].endswith("Z")
    assert name not in [s["Spec"]["Name"] for s in world.swarm.services()]
    assert world.swarm.services_labelled(f"{LABEL_JOB_KIND}.nothing") == []
