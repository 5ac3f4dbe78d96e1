"""deploy --dry-run's diff builder."""

from __future__ import annotations

from core.appspec import parse_app_config
from core.deploy.plan import diff
from core.deploy.spec import service_spec
from core.secrets import MASK


def spec(text: str, release: int = 1, env: dict[str, str] | None = None) -> dict:
    app = parse_app_config(text).base
    if env:
        app = app.model_copy(update={"env": env})
    return service_spec(app, "production", release, f"shipbot/a:{release}")


def test_first_deploy_is_a_create():
    lines = diff(None, spec("name: a\nimage: a:1\n"), set())
    assert lines == [
        "create service a-production",
        "image: - → shipbot/a:1",
        "replicas: - → 1",
        "label shipbot.app: - → a",
        "label shipbot.env: - → production",
        "label shipbot.managed: - → true",
        "label shipbot.release: - → 1",
    ]


def test_routing_shows_as_labels():
    old = spec("name: a\nimage: a:1\nport: 80\n")
    new = spec("name: a\nimage: a:1\nport: 80\ndomains: [a.test]\nhttps: false\n", 2)
    assert diff(old, new, set()) == [
        "image: shipbot/a:1 → shipbot/a:2",
        "label shipbot.release: 1 → 2",
        "label traefik.enable: - → true",
        "label traefik.http.middlewares.a-production-retry.retry.attempts: - → 4",
        "label traefik.http.middlewares.a-production-retry.retry.initialinterval: - → 50ms",
        "label traefik.http.routers.a-production.entrypoints: - → web",
        "label traefik.http.routers.a-production.middlewares: - → a-production-retry",
        "label traefik.http.routers.a-production.priority: - → 10000",
        "label traefik.http.routers.a-production.rule: - → Host(`a.test`)",
        "label traefik.http.routers.a-production.service: - → a-production",
        "label traefik.http.services.a-production.loadbalancer.server.port: - → 80",
        "label traefik.swarm.lbswarm: - → false",
        "label traefik.swarm.network: - → shipbot-a-production",
    ]


def test_changes_with_secrets_masked():
    old = spec("name: a\nimage: a:1\n", 1, {"KEEP": "1", "GONE": "x", "TOKEN": "old-secret"})
    new = spec(
        "name: a\nimage: a:1\nreplicas: 3\nhealthcheck: {cmd: [x]}\n",
        2,
        {"KEEP": "1", "NEW": "y", "TOKEN": "new-secret"},
    )
    assert diff(old, new, {"TOKEN"}) == [
        "image: shipbot/a:1 → shipbot/a:2",
        "replicas: 1 → 3",
        "env +NEW=y",
        "env -GONE",
        f"env ~TOKEN: {MASK} → {MASK}",
        "label shipbot.release: 1 → 2",
        "healthcheck changes",
        "rollout: 1 at a time, start-first → 3 at a time, start-first",
    ]


def test_a_rollout_change_alone_is_shown():
    old = spec("name: a\nimage: a:1\nreplicas: 4\n")
    new = spec("name: a\nimage: a:1\nreplicas: 4\nrollout: {parallelism: 1, order: stop-first}\n")
    assert diff(old, new, set()) == ["rollout: 4 at a time, start-first → 1 at a time, stop-first"]


def test_nothing():
    same = spec("name: a\nimage: a:1\n")
    assert diff(same, same, set()) == ["nothing would change"]
