"""Previews on the real engine, behind a Traefik of this module's own: a pull request's
payload creates pr-7 at its preview domain (Host header against the local proxy), a push
updates it, and a close payload removes every trace: service, volume, route, records."""

from __future__ import annotations

import contextlib
import http.client
import time
import uuid
from pathlib import Path

import pytest

from commands.dispatch import ChatRequest, Dispatcher
from commands.hooks import Receiver
from tests import test_edge_docker
from tests.chat import result, say
from tests.forge_payloads import Repo, deliver, github_pull
from tests.test_edge_docker import TRAEFIK_IMAGE, get, until_status

pytestmark = pytest.mark.docker

edge = test_edge_docker.edge  # a proxy of this module's own, on free ports
ADMIN = "console:alice"
SECRET = "s3cret-webhook-value"  # what tests.forge_payloads.deliver signs with
DOCKERFILE = """\
FROM busybox
COPY www /www
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
"""
APP_YML = """\
name: {name}
build: .
port: 8080
domains: [{name}.test]
https: false
volumes: ["cache:/cache"]
healthcheck: {{cmd: ["wget", "-qO-", "http://127.0.0.1:8080/"], interval: 1s, timeout: 2s,
  start_period: 1s}}
stop_grace_period: 1s
previews: {{domain: "pr-{{number}}.{name}.test", https: false}}
"""


def until_gone(port: int, host: str, seconds: float = 20.0) -> int:
    """Poll the proxy until ``host`` has no router (404); the status it ended with."""
    deadline = time.monotonic() + seconds
    status = 0
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, http.client.HTTPException):
            status = get(port, host)[0]
            if status == 404:
                return status
        time.sleep(0.3)
    return status


@pytest.fixture
def bot(docker_client, tmp_path: Path, edge) -> Dispatcher:
    home = tmp_path / "home"
    home.mkdir()
    (home / "shipbot.yml").write_text(
        f"admins: [{ADMIN}]\n"
        f"edge: {{image: {TRAEFIK_IMAGE}, service: {edge['service']}, "
        f"http_port: {edge['http']}, https_port: {edge['https']}, "
        f"acme: {{ca_server: 'https://127.0.0.1:9/dir', volume: {edge['service']}-acme}}}}\n"
    )
    dispatcher = Dispatcher.open(home)
    yield dispatcher
    dispatcher.close()


async def test_a_pull_request_gets_a_preview_and_its_close_removes_every_trace(
    bot, edge, tmp_path, docker_client, made_apps
):
    name = f"zp{uuid.uuid4().hex[:7]}"
    made_apps.append(name)
    folder = tmp_path / name
    (folder / "www").mkdir(parents=True)
    (folder / "www" / "index.html").write_text("production\n")
    (folder / "Dockerfile").write_text(DOCKERFILE)
    (folder / "app.yml").write_text(APP_YML.format(name=name))
    repo = Repo(tmp_path, folder)
    assert result(await say(bot, "proxy setup", ADMIN)).ok
    assert result(await say(bot, f"apps add {name} --git {repo.origin} --ref main", ADMIN)).ok
    grant = f"domain grant {name} '*.{name}.test' --env 'pr-*'"
    assert result(await say(bot, grant, ADMIN)).ok
    secret = ChatRequest("console", ADMIN, "console", f"webhook secret {name}", SECRET)
    assert result(await bot.run(secret)).ok
    receiver = Receiver(bot)
    preview = f"pr-7.{name}.test"

    (folder / "www" / "index.html").write_text("preview of pull request 7\n")
    head = repo.pull_request(7, "the change under review")
    answer = await deliver(
        receiver, "pull_request", github_pull(str(repo.origin), 7, "opened", head)
    )
    assert answer.text == f"{name}: deploying preview pr-7"
    [release] = bot.engine.store.releases(name, "pr-7")
    assert (release.status, release.source_ref) == ("live", head), release
    assert until_status(edge["http"], preview, 200) == "preview of pull request 7\n"
    assert docker_client.api.inspect_volume(f"{name}-pr-7-cache")["Name"] == f"{name}-pr-7-cache"
    # the app's own domain is not the preview's: nothing answers there (it was never deployed)
    assert get(edge["http"], f"{name}.test")[0] == 404

    (folder / "www" / "index.html").write_text("second push\n")
    again = repo.pull_request(7, "after review")
    await deliver(receiver, "pull_request", github_pull(str(repo.origin), 7, "synchronize", again))
    assert until_status(edge["http"], preview, 200) == "second push\n"
    assert [r.source_ref for r in bot.engine.store.releases(name, "pr-7")] == [again, head]

    closed = await deliver(
        receiver, "pull_request", github_pull(str(repo.origin), 7, "closed", again)
    )
    assert closed.text == f"{name}: closing preview pr-7"
    assert docker_client.api.services(filters={"name": f"{name}-pr-7"}) == []
    assert docker_client.volumes.list(filters={"name": f"{name}-pr-7"}) == []
    assert docker_client.images.list(name=f"shipbot/{name}") == []
    assert until_gone(edge["http"], preview) == 404
    store = bot.engine.store
    assert store.releases(name, "pr-7") == [] and store.preview(name, 7) is None
    for table in ("deployments", "variables", "previews", "releases"):
        sql = f"SELECT count(*) FROM {table} WHERE app = ? AND env = 'pr-7'"  # noqa: S608
        assert store.db.execute(sql, [name]).fetchone()[0] == 0, table
    rows = [(r["user"], r["result"], r["detail"]) for r in store.audit_log(name, 50)]
    assert (f"webhook:{name}", "ok", f"preview pr-7 of {name} removed") in rows
