"""Domain grants (issue 20, item 4 and 17a), with no engine: the real dispatcher, store and
deploy path on the fake swarm, shipbot's Cloudflare client against the local fake API, and the
webhook receiver for previews. What an app may route is an admin's word, never a push's."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from commands.hooks import Receiver
from commands.replies import Failure, Message
from core.config import ControlConfig, DnsConfig
from core.store import Store
from tests import forge_payloads
from tests.chat import failure, result, say, table
from tests.fake_cloudflare import FakeCloudflare
from tests.fast_plane import dispatcher, fake_swarm
from tests.forge_payloads import deliver, github_pull, posted

bot, fake, repo = forge_payloads.bot, forge_payloads.fake, forge_payloads.repo

ADMIN = "console:root"
MAL = "console:mal"  # deployer of mine, and nothing else
TOKEN = "cf-token-0123456789abcdef"


def app_yml(name: str, routing: str) -> str:
    return f"name: {name}\nimage: shop:1\nport: 8080\nhttps: false\n{routing}\n"


@pytest.fixture
def plane(tmp_path: Path):
    """Two apps, shop and mine; MAL may deploy mine (and push to its repository)."""
    home = tmp_path / "home"
    home.mkdir()
    swarm = fake_swarm("shop:1")
    bot = dispatcher(home, swarm, [ADMIN])
    folders = {}
    for name in ("shop", "mine"):
        folders[name] = tmp_path / name
        folders[name].mkdir()
        (folders[name] / "app.yml").write_text(app_yml(name, ""))
    yield bot, swarm, folders
    bot.close()


async def _added(bot, folders) -> None:
    for name, folder in folders.items():
        assert result(await say(bot, f"apps add {name} --path {folder}", ADMIN)).ok
    assert result(await say(bot, f"grant {MAL} deployer --app mine", ADMIN)).ok


def _grants(bot) -> list[tuple[str, str, str]]:
    return [(g["app"], g["pattern"], g["env"]) for g in bot.engine.store.domain_grants()]


async def test_only_an_admin_of_every_app_grants_and_one_pattern_has_one_app(plane):
    bot, _, folders = plane
    await _added(bot, folders)
    granted = result(await say(bot, "domain grant shop shop.example.com --env production", ADMIN))
    assert granted.title == "shop may route shop.example.com in environment production"
    before = _grants(bot)

    # a deployer of mine, and an admin of mine alone, grant nothing
    denied = failure(await say(bot, "domain grant mine '*.example.com'", MAL))
    assert denied.kind == "denied"
    assert result(await say(bot, "grant console:ada admin --app mine", ADMIN)).ok
    refused = failure(await say(bot, "domain grant mine '*.example.com'", "console:ada"))
    assert (refused.kind, refused.message) == (
        "denied",
        "console:ada may not grant domains: that needs the admin role on every app and "
        "environment. An admin can run `grant console:ada admin`, or grant the domain "
        "themselves; nothing was changed",
    )
    # the same exact name for another app: refused, naming the holder
    taken = failure(await say(bot, "domain grant mine shop.example.com", ADMIN))
    assert taken.message == (
        "shop.example.com is granted to app shop (environment production, by console:root): "
        "one name or wildcard routes one app, so nothing was changed. To move it, revoke it "
        "there first: `domain revoke shop shop.example.com --env production`"
    )
    assert _grants(bot) == before
    rows = bot.engine.store.audit_log(limit=3)
    assert [(r["user"], r["result"]) for r in rows] == [
        (ADMIN, "failed"),
        ("console:ada", "denied"),
        (ADMIN, "ok"),
    ]

    # an exact name inside another app's wildcard is allowed; the same wildcard is not
    wild = result(await say(bot, "domain grant mine '*.example.com'", ADMIN))
    assert wild.title == "mine may route *.example.com in every environment"
    assert wild.details == ("names other apps hold under it stay theirs: shop.example.com",)
    assert "is granted to app mine (every environment" in (
        failure(await say(bot, "domain grant shop '*.example.com'", ADMIN)).message
    )
    again = result(await say(bot, "domain grant mine '*.example.com'", ADMIN))
    assert (
        again.title == "mine may route *.example.com in every environment already: nothing changed"
    )
    bad = failure(await say(bot, "domain grant mine '*.com'", ADMIN))
    assert bad.message.startswith("domain grant: '*.com': a wildcard must sit under a domain")

    # viewers see the grants of the apps they see
    assert result(await say(bot, "grant console:vera viewer --app shop", ADMIN)).ok
    assert table(await say(bot, "domains", "console:vera")).rows == (
        ("shop", "shop.example.com", "production", ADMIN),
    )
    assert table(await say(bot, "domains mine", ADMIN)).rows == (
        ("mine", "*.example.com", "*", ADMIN),
    )

    gone = result(await say(bot, "domain revoke mine '*.example.com'", ADMIN))
    assert gone.title == "mine may no longer route *.example.com in every environment"
    missing = failure(await say(bot, "domain revoke mine '*.example.com'", ADMIN))
    assert missing.message == (
        "mine has no grant of *.example.com in every environment: see `domains mine`; "
        "nothing was changed"
    )
    assert _grants(bot) == before
    empty = await say(bot, "domains mine", ADMIN)
    assert [r.text for r in empty if isinstance(r, Message)] == [
        "mine has no domain grants: an admin runs `domain grant mine DOMAIN`"
    ]


async def test_a_push_cannot_route_a_domain_no_grant_covers(plane):
    bot, swarm, folders = plane
    await _added(bot, folders)
    mine = folders["mine"] / "app.yml"
    mine.write_text(app_yml("mine", "domains: [shop.example.com]"))
    for text in ("deploy mine", "deploy mine --dry-run"):
        refused = failure(await say(bot, text, MAL))
        assert refused.message == (
            "mine may not route shop.example.com in production: no domain grant covers it. "
            "An admin runs `domain grant mine shop.example.com --env production`; nothing was "
            "changed"
        )
    assert swarm.services() == [] and bot.engine.store.releases("mine") == []

    # the owners hold the name; mine holds the wildcard: still not that name
    assert result(await say(bot, "domain grant shop shop.example.com", ADMIN)).ok
    assert result(await say(bot, "domain grant mine '*.example.com' --env production", ADMIN)).ok
    refused = failure(await say(bot, "deploy mine", MAL))
    assert refused.message.startswith(
        "shop.example.com is granted to app shop: one name routes one app. Route another name"
    )
    assert swarm.services() == []
    # the apex is not under the wildcard, and another environment is not production
    mine.write_text(app_yml("mine", "domains: [example.com]"))
    assert (
        "may not route example.com in production"
        in failure(await say(bot, "deploy mine", MAL)).message
    )
    mine.write_text(app_yml("mine", "domains: [app.example.com]\nenvironments: {staging: {}}"))
    assert (
        "`domain grant mine app.example.com --env staging`"
        in failure(await say(bot, "deploy mine --env staging", MAL)).message
    )
    assert swarm.services() == []
    # what the grant covers deploys, wildcard included; its router leaves shop's name alone
    mine.write_text(app_yml("mine", "domains: ['*.example.com', app.example.com]"))
    assert result(await say(bot, "deploy mine", MAL)).ok
    labels = swarm.inspect_service("mine-production")["Spec"]["Labels"]
    assert labels["traefik.http.routers.mine-production-wildcard.rule"] == (
        "HostRegexp(`^[a-z0-9-]+\\.example\\.com$`) && !Host(`shop.example.com`)"
    )
    assert labels["traefik.http.routers.mine-production.rule"] == "Host(`app.example.com`)"
    # a name granted under a live wildcard: the reply says when the wildcard lets go of it
    later = result(await say(bot, "domain grant shop api.example.com", ADMIN))
    assert later.details == (
        "mine's *.example.com stops matching it at that app's next deploy (its routing "
        "labels leave out the names granted to other apps)",
    )
    assert result(await say(bot, "deploy mine", MAL)).ok
    labels = swarm.inspect_service("mine-production")["Spec"]["Labels"]
    assert labels["traefik.http.routers.mine-production-wildcard.rule"].endswith(
        "&& !(Host(`api.example.com`) || Host(`shop.example.com`))"
    )
    assert result(await say(bot, "deploy shop", ADMIN)).ok  # shop's app.yml routes nothing


@pytest.fixture
async def cloudflare(monkeypatch):
    for key in list(os.environ):
        if key.startswith("CLOUDFLARE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    server = await FakeCloudflare(tokens={TOKEN: {"example.com"}}).start()
    yield server
    await server.stop()


async def test_dns_writes_no_apex_or_wildcard_record_without_their_own_grant(plane, cloudflare):
    bot, _, folders = plane
    dns = DnsConfig(zone="example.com", addresses=["203.0.113.10"], api_url=cloudflare.base_url)
    bot.config = ControlConfig(admins=[ADMIN], dns=dns)
    await _added(bot, folders)
    # a branch's app.yml asks staging for the zone's apex and its wildcard
    routing = "domains: [www.example.com]\nenvironments:\n  staging:\n"
    routing += "    domains: ['*.example.com', example.com]\n"
    (folders["mine"] / "app.yml").write_text(app_yml("mine", routing))
    assert result(await say(bot, "domain grant mine www.example.com", ADMIN)).ok
    for text in ("dns sync mine --env staging", "deploy mine --env staging"):
        refused = failure(await say(bot, text, MAL))
        assert refused.message == (
            "mine may not route *.example.com in staging: no domain grant covers it. An admin "
            "runs `domain grant mine *.example.com --env staging`; nothing was changed"
        )
    assert cloudflare.writes() == []
    # the name it was granted gets its record
    assert result(await say(bot, "dns sync mine", MAL)).ok
    assert [c.body["name"] for c in cloudflare.writes()] == ["www.example.com"]
    # only an admin's grant of that very wildcard and apex lets them in
    assert result(await say(bot, "domain grant mine '*.example.com' --env staging", ADMIN)).ok
    assert "may not route example.com in staging" in (
        failure(await say(bot, "dns sync mine --env staging", MAL)).message
    )
    assert result(await say(bot, "domain grant mine example.com --env staging", ADMIN)).ok
    synced = result(await say(bot, "dns sync mine --env staging", MAL))
    assert synced.details == (
        "created A *.example.com → 203.0.113.10",
        "created A example.com → 203.0.113.10",
    )


async def test_a_preview_needs_its_domain_granted(bot, repo, fake):
    revoke = "domain revoke zpapp '*.preview.test' --env 'pr-*'"
    assert result(await say(bot, revoke, forge_payloads.ADMIN)).ok
    head = repo.pull_request(7, "change")
    await deliver(Receiver(bot), "pull_request", github_pull(str(repo.origin), 7, "opened", head))
    assert fake.services() == []
    refusal = [p for p in posted(bot) if isinstance(p, Failure)][-1]
    assert refusal.message == (
        "zpapp may not route pr-7.preview.test in pr-7: no domain grant covers it. An admin "
        "runs `domain grant zpapp *.preview.test --env pr-*`; nothing was changed"
    )


def test_the_upgrade_grants_what_live_releases_route(tmp_path: Path):
    store = Store(tmp_path / "shipbot.db")
    labels = {
        "traefik.http.routers.shop-production.rule": "Host(`shop.example.com`)",
        "traefik.http.routers.shop-production-wildcard.rule": (
            "HostRegexp(`^[a-z0-9-]+\\.shop\\.example\\.com$`) && PathPrefix(`/api`)"
        ),
        "traefik.http.routers.shop-production.service": "shop-production",
    }
    rows = [("shop", "production", "live", labels), ("old", "production", "superseded", labels)]
    with store.db.conn:
        for app, env, status, spec_labels in rows:
            store.db["releases"].insert(
                {
                    "app": app,
                    "env": env,
                    "number": 1,
                    "image": "x",
                    "status": status,
                    "created_at": 0.0,
                    "spec": json.dumps({"Labels": spec_labels}),
                }
            )
        # as the file was before this migration
        store.db["domain_grants"].drop()
        store.db.execute("DELETE FROM _sqlite_migrations WHERE name = 'v16_domain_grants'")
    store.close()
    upgraded = Store(tmp_path / "shipbot.db")
    assert [
        (g["app"], g["pattern"], g["env"], g["granted_by"]) for g in upgraded.domain_grants()
    ] == [
        ("shop", "*.shop.example.com", "production", "upgrade"),
        ("shop", "shop.example.com", "production", "upgrade"),
    ]
    upgraded.close()
