"""A failure that meets a second failure, on the real engine: the reply, the records,
`status` and `docker service inspect` agree on what Swarm runs afterwards."""

from __future__ import annotations

import re

import pytest

from core.watch.alert_rules import OPEN
from tests import test_deploy_docker
from tests.chat import result, say, table

pytestmark = pytest.mark.docker

app, bot = test_deploy_docker.app, test_deploy_docker.bot  # a copy of examples/hello, a chat


def running_of(docker_client, service: str, image: str) -> int:
    tasks = docker_client.api.tasks(filters={"service": service, "desired-state": "running"})
    return sum(
        1
        for t in tasks
        if t["Status"]["State"] == "running"
        and t["Spec"]["ContainerSpec"]["Image"].split("@")[0] == image
    )


async def test_a_failed_rollback_is_told_as_failed_and_recorded_so(bot, app, docker_client):
    name, folder = app
    yml = folder / "app.yml"
    # stop-first: release 1's task is gone before release 2 starts, so going back needs its image
    yml.write_text(yml.read_text() + "rollout: {order: stop-first}\n")
    service = f"{name}-staging"
    assert result(await say(bot, f"apps add {name} --path {folder}")).ok
    assert result(await say(bot, f"deploy {name} --env staging")).ok
    # the second failure: release 1's image is gone, so no rollback can start it again
    docker_client.images.remove(f"shipbot/{name}:1", force=True)
    dockerfile = folder / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace('"8080"', '"9999"'))

    outcome = result(await say(bot, f"deploy {name} --env staging"))

    assert not outcome.ok
    # Swarm's own verdict word (failed, or stalled when its rollback paused) is timing's
    assert re.fullmatch(
        rf"deploy of {name} release 2 (failed|stalled), and the rollback to release 1 failed too",
        outcome.title,
    ), outcome
    assert outcome.fields["rollback"] == "failed"
    assert not any("still runs" in line for line in outcome.details), outcome.details
    # the reply's last line is what `docker service inspect` and the tasks say
    spec = docker_client.api.inspect_service(service)["Spec"]
    label = spec["Labels"]["shipbot.release"]
    image = spec["TaskTemplate"]["ContainerSpec"]["Image"].split("@")[0]
    running = running_of(docker_client, service, image)
    assert outcome.details[-1] == f"{service} runs release {label}: {running} of 1 task running"
    assert running == 0
    # the records agree: nothing is live, release 2 failed, release 1 no longer claimed live
    rows = table(await say(bot, f"releases {name} --env staging")).rows
    statuses = {row[0]: row for row in rows}
    assert "live" not in " ".join(" ".join(map(str, row)) for row in rows), rows
    assert "failed" in " ".join(map(str, statuses["2"])), rows
    status = table(await say(bot, f"status {name}")).rows
    assert any("0/1" in " ".join(map(str, row)) for row in status), status
    # one alert is open for it, and its post is queued for the alerts channels
    store = bot.engine.store
    alerts = [a for a in store.open_alerts() if a["subject"] == service]
    assert len(alerts) == 1 and alerts[0]["status"] == OPEN, alerts
