"""The foundation's story against the real engine: deploy, fail and roll back, roll back by hand."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

from commands.dispatch import Dispatcher
from commands.replies import FAILED
from tests.chat import (
    failure,
    fetch,
    logs,
    result,
    say,
    steps,
    table,
    task_addresses,
)

pytestmark = pytest.mark.docker

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "hello"


@pytest.fixture
def app(tmp_path: Path) -> tuple[str, Path]:
    """A copy of examples/hello under a unique name, so runs never touch a user's apps."""
    name = f"t{uuid.uuid4().hex[:8]}"
    folder = tmp_path / name
    shutil.copytree(EXAMPLE, folder)
    yml = folder / "app.yml"
    yml.write_text(yml.read_text().replace("name: hello", f"name: {name}"))
    return name, folder


@pytest.fixture
def bot(docker_client, tmp_path: Path, app, made_apps):
    home = tmp_path / "home"
    home.mkdir()
    (home / "shipbot.yml").write_text("admins: [console:alice]\n")
    dispatcher = Dispatcher.open(home)
    made_apps.append(app[0])
    yield dispatcher
    dispatcher.close()


def set_page(folder: Path, text: str) -> None:
    (folder / "www" / "index.html").write_text(text + "\n")


async def test_deploy_fail_rollback_story(bot, app, docker_client):
    name, folder = app
    service = f"{name}-production"
    added = result(await say(bot, f"apps add {name} --path {folder}"))
    assert added.ok and added.title == f"registered {name}"

    # 1. a two-replica app built from its folder serves, and status says 2/2 healthy
    set_page(folder, "release one")
    first = await say(bot, f"deploy {name}")
    assert result(first).ok, first
    assert result(first).title == f"{name} release 1 is live on production"
    assert any("Successfully built" in line for line in logs(first))
    addresses = task_addresses(docker_client, service)
    assert len(addresses) == 2
    assert [fetch(a) for a in addresses] == ["release one\n", "release one\n"]
    status = table(await say(bot, f"status {name}"))
    assert status.rows == ((name, "production", "1", "2/2 healthy", ""),)

    # 2. a release whose health check fails is rolled back, the check quoted, the old one serves
    set_page(folder, "release two")
    dockerfile = folder / "Dockerfile"
    good = dockerfile.read_text()
    dockerfile.write_text(good.replace('"8080"', '"9999"'))
    broken = await say(bot, f"deploy {name}")
    outcome = result(broken)
    assert not outcome.ok
    assert outcome.title == f"deploy of {name} release 2 failed and was rolled back to release 1"
    assert outcome.details[0].startswith(
        "why: health check `wget -qO- http://127.0.0.1:8080/` failed (exit 1): "
    ), outcome.details
    assert "Connection refused" in outcome.details[0] or "can't connect" in outcome.details[0]
    assert outcome.details[1] == f"{service} still runs release 1: 2 of 2 tasks running"
    assert [fetch(a) for a in task_addresses(docker_client, service)] == ["release one\n"] * 2
    spec = docker_client.api.inspect_service(service)["Spec"]
    assert spec["TaskTemplate"]["ContainerSpec"]["Image"] == f"shipbot/{name}:1"

    # 3. a good third release, then `rollback` returns to release 1; releases lists them all
    assert result(await say(bot, f"grant console:bob deployer --app {name}")).ok
    dockerfile.write_text(good)
    set_page(folder, "release three")
    assert result(await say(bot, f"deploy {name}", user="console:bob")).ok
    assert {fetch(a) for a in task_addresses(docker_client, service)} == {"release three\n"}
    back = result(await say(bot, f"rollback {name}"))
    assert back.ok and back.title == f"{name} is back on release 1 (production)"
    assert {fetch(a) for a in task_addresses(docker_client, service)} == {"release one\n"}
    listed = table(await say(bot, f"releases {name}"))
    assert [(row[0], row[1], row[2]) for row in listed.rows] == [
        ("3", "superseded", "console:bob"),
        ("2", "failed", "console:alice"),
        ("1", "live", "console:alice"),
    ]
    assert all(row[3] for row in listed.rows)  # when
    audit = bot.engine.store.audit_log(name)
    assert [(row["command"].split()[0], row["result"]) for row in audit] == [
        ("rollback", "ok"),
        ("deploy", "ok"),
        ("grant", "ok"),
        ("deploy", "failed"),
        ("deploy", "ok"),
        ("apps", "ok"),
        ("policy", "ok"),  # accepted with apps add
    ]


async def test_scale_restart_logs(bot, app, docker_client):
    name, folder = app
    service = f"{name}-staging"
    assert result(await say(bot, f"apps add {name} --path {folder}")).ok
    assert result(await say(bot, f"deploy {name} --env staging")).ok
    assert len(task_addresses(docker_client, service)) == 1  # staging overrides replicas: 1

    scaled = result(await say(bot, f"scale {name} 3 --env staging"))
    assert scaled.ok and scaled.title == f"{name} (staging) scaled to 3"
    assert scaled.details == ("app.yml still sets its own count: the next deploy applies it",)
    assert len(task_addresses(docker_client, service)) == 3

    before = set(task_addresses(docker_client, service))
    restarted = result(await say(bot, f"restart {name} --env staging"))
    assert restarted.ok, restarted
    after = set(task_addresses(docker_client, service))
    assert len(after) == 3 and not before & after  # every task replaced

    for address in after:
        fetch(address)
    lines = logs(await say(bot, f"logs {name} --env staging --tail 5"))
    assert 1 <= len(lines) <= 5


async def test_bad_inputs_change_nothing(bot, app, docker_client, tmp_path):
    name, folder = app
    service = f"{name}-production"
    assert result(await say(bot, f"apps add {name} --path {folder}")).ok
    assert result(await say(bot, f"deploy {name}")).ok
    version = docker_client.api.inspect_service(service)["Version"]["Index"]

    unknown = failure(await say(bot, "deploy nosuchapp"))
    assert unknown.kind == FAILED
    assert unknown.message.startswith("no app named 'nosuchapp' (registered: ")

    yml = folder / "app.yml"
    good_yml = yml.read_text()
    yml.write_text(good_yml.replace("staging: {replicas: 1}", "staging: {replicas: 0}"))
    bad_yml = failure(await say(bot, f"deploy {name}"))
    assert bad_yml.message == (f"{yml}: environments.staging.replicas: must be ≥ 1, got 0")
    yml.write_text(good_yml)

    dockerfile = folder / "Dockerfile"
    good_dockerfile = dockerfile.read_text()
    dockerfile.unlink()
    missing = failure(await say(bot, f"deploy {name}"))
    assert missing.message == (
        f"no Dockerfile at {folder / 'Dockerfile'}: add one, or set build.dockerfile in app.yml"
    )

    dockerfile.write_text("FROM busybox\nRUN echo compiling the app && exit 3\n")
    build = failure(await say(bot, f"deploy {name}"))
    assert build.message.startswith(f"the build of {name} failed: The command '/bin/sh -c echo")
    assert "returned a non-zero code: 3" in build.message
    assert "compiling the app" in build.log_tail
    dockerfile.write_text(good_dockerfile)

    shell = failure(await say(bot, "deploy 'hello;rm -rf /'"))
    assert shell.message == (
        "deploy: 'hello;rm -rf /' is not an app name (a-z, 0-9 and '-', starting with a letter)"
    )

    # nothing above touched the running service or made a release live
    assert docker_client.api.inspect_service(service)["Version"]["Index"] == version
    assert [
        r.number for r in bot.engine.store.releases(name, "production") if r.status == "live"
    ] == [1]
    assert all("\n" not in f.message for f in (unknown, bad_yml, missing, shell))


async def test_git_source(bot, app, docker_client, tmp_path):
    import subprocess

    name, folder = app
    repo = tmp_path / "repo"
    shutil.copytree(folder, repo)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    set_page(repo, "from a tag")
    subprocess.run([*git, "commit", "-qam", "two"], check=True)
    subprocess.run([*git, "tag", "v2"], check=True)

    added = await say(bot, f"apps add {name} --git {repo} --ref main")
    assert result(added).ok, added
    deployed = await say(bot, f"deploy {name} v2")
    assert result(deployed).ok, deployed
    assert {fetch(a) for a in task_addresses(docker_client, f"{name}-production")} == {
        "from a tag\n"
    }
    listed = table(await say(bot, f"releases {name}"))
    commit = subprocess.run([*git, "rev-parse", "v2"], capture_output=True, text=True).stdout
    assert listed.rows[0][4] == commit.strip()[:12]
    assert "rolling" not in " ".join(steps(deployed))
