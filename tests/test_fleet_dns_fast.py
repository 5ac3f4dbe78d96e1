"""DNS per server (issue 23): an app's records point at the public addresses of the server
its environment runs on, recorded at `server add --address`, by `server address` or under
shipbot.yml's `dns.servers`; `server address` moves the records of the apps on that server
at once; a server with no address is named with what to do. Three fake swarms through the
real dispatcher, the local fake of Cloudflare's API."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from commands.dispatch import Dispatcher
from commands.grammar import UsageError, parse, render
from core.config import ConfigError, ControlConfig, DnsConfig, load_config
from core.edge.dns import DnsError, targets
from core.engine import Engine
from core.secrets import Vault
from core.store import Store
from core.swarm.servers import Servers
from tests.chat import failure, result, say, table
from tests.clock import SwarmSteps
from tests.fake_cloudflare import FakeCloudflare
from tests.fast_plane import fake_swarm
from tests.test_servers import row

TOKEN = "cf-token-0123456789abcdef"
ADMIN = "console:root"
APPS = {"shop": "eu-1", "blog": "eu-2", "docs": "eu-3", "wiki": None}


@pytest.fixture(autouse=True)
def _token(monkeypatch):
    for key in list(os.environ):
        if key.startswith("CLOUDFLARE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)


@pytest.fixture
async def cloudflare():
    server = await FakeCloudflare(tokens={TOKEN: {"example.com"}}).start()
    yield server
    await server.stop()


def dns(fake: FakeCloudflare, **extra) -> DnsConfig:
    return DnsConfig(zone="example.com", addresses=["203.0.113.10"], api_url=fake.base_url, **extra)


@pytest.fixture
async def fleet(tmp_path: Path, cloudflare):
    """`local` and three servers added from chat: eu-1 recorded with its addresses (as
    `server add --address` does), eu-2 and eu-3 without; one app per server, each with a
    granted domain; eu-2's addresses in shipbot.yml."""
    swarms = {name: fake_swarm(*(f"{app}:1" for app in APPS)) for name in ("local", "eu-1")}
    swarms |= {name: fake_swarm(*(f"{app}:1" for app in APPS)) for name in ("eu-2", "eu-3")}
    home = tmp_path / "home"
    home.mkdir()
    engine = Engine(
        Store(home / "shipbot.db"),
        servers=Servers({name: (lambda s=s: s) for name, s in swarms.items()}),
        home=home,
        vault=Vault.open(home),
        server_apps={"eu-1": ["shop"], "eu-2": ["blog"], "eu-3": ["docs"]},
        clock=SwarmSteps(*swarms.values()),
    )
    engine.store.add_server({**row("eu-1"), "addresses": ("198.51.100.1", "2001:db8::1")})
    engine.store.add_server(row("eu-2"))
    engine.store.add_server(row("eu-3"))
    config = ControlConfig(admins=[ADMIN], dns=dns(cloudflare, servers={"eu-2": ["198.51.100.2"]}))
    bot = Dispatcher(engine, config)
    for app, server in APPS.items():
        (tmp_path / app).mkdir()
        placed = f"environments:\n  production: {{server: {server}}}\n" if server else ""
        (tmp_path / app / "app.yml").write_text(
            f"name: {app}\nimage: {app}:1\nport: 8080\ndomains: [{app}.example.com]\n{placed}"
        )
        assert result(await say(bot, f"apps add {app} --path {tmp_path / app}", ADMIN)).ok
        assert result(await say(bot, f"domain grant {app} {app}.example.com", ADMIN)).ok
    yield bot, swarms
    bot.close()


def contents(fake: FakeCloudflare, name: str) -> list[tuple[str, str]]:
    return sorted((r["type"], r["content"]) for r in fake.of(name))


async def test_each_app_points_at_its_own_servers_addresses(fleet, cloudflare):
    bot, swarms = fleet
    shop = result(await say(bot, "deploy shop", ADMIN))
    assert shop.ok, shop
    assert shop.details[-1] == (
        "DNS: created A shop.example.com → 198.51.100.1; "
        "created AAAA shop.example.com → 2001:db8::1"
    )
    blog = result(await say(bot, "deploy blog", ADMIN))
    assert blog.details[-1] == "DNS: created A blog.example.com → 198.51.100.2"
    wiki = result(await say(bot, "deploy wiki", ADMIN))
    assert wiki.details[-1] == "DNS: created A wiki.example.com → 203.0.113.10"
    assert contents(cloudflare, "shop.example.com") == [
        ("A", "198.51.100.1"),
        ("AAAA", "2001:db8::1"),
    ]
    assert contents(cloudflare, "blog.example.com") == [("A", "198.51.100.2")]
    assert contents(cloudflare, "wiki.example.com") == [("A", "203.0.113.10")]
    # each went to its own server's engine, and to no other
    assert swarms["eu-1"].inspect_service("shop-production") is not None
    assert swarms["eu-2"].inspect_service("blog-production") is not None
    assert [s["Spec"]["Name"] for s in swarms["local"].services()] == ["wiki-production"]
    synced = result(await say(bot, "dns sync blog", ADMIN))
    assert synced.fields == {"server": "eu-2"}
    assert synced.title.endswith("0 created, 0 updated, 1 unchanged")


async def test_a_server_with_no_address_is_named_with_what_to_do(fleet, cloudflare):
    bot, swarms = fleet
    docs = result(await say(bot, "deploy docs", ADMIN))
    assert docs.ok and docs.title == "docs release 1 is live on production"
    assert docs.details[-1] == (
        "DNS not updated: server eu-3 has no public address recorded, so no DNS record can "
        "point at it: an admin records it with `server address eu-3 A[,A…]` (its public "
        "IPv4/IPv6 addresses) or lists it under dns.servers.eu-3 in shipbot.yml; "
        "`dns sync docs` to try again"
    )
    assert swarms["eu-3"].inspect_service("docs-production") is not None
    assert cloudflare.writes() == []
    refused = failure(await say(bot, "dns sync docs", ADMIN))
    assert refused.message.startswith("server eu-3 has no public address recorded")
    assert cloudflare.writes() == []

    recorded = result(await say(bot, "server address eu-3 192.0.2.33", ADMIN))
    assert recorded.title == "server eu-3's public addresses: 192.0.2.33"
    assert recorded.details == (
        "was none",
        "DNS of docs (production): no records yet",
    )
    synced = result(await say(bot, "dns sync docs", ADMIN))
    assert synced.details == ("created A docs.example.com → 192.0.2.33",)


async def test_server_address_moves_the_records_of_its_apps_at_once(fleet, cloudflare):
    bot, swarms = fleet
    for app in ("shop", "blog", "wiki"):
        assert result(await say(bot, f"deploy {app}", ADMIN)).ok
    cloudflare.calls.clear()
    moved = result(await say(bot, "server address eu-1 198.51.100.11", ADMIN))
    assert moved.title == "server eu-1's public addresses: 198.51.100.11"
    assert moved.details == (
        "was 198.51.100.1, 2001:db8::1",
        "DNS of shop (production): deleted AAAA shop.example.com → 2001:db8::1; "
        "updated A shop.example.com → 198.51.100.11 (was 198.51.100.1)",
    )
    assert contents(cloudflare, "shop.example.com") == [("A", "198.51.100.11")]
    # the other servers' records were not touched, nor read back as writes
    assert contents(cloudflare, "blog.example.com") == [("A", "198.51.100.2")]
    assert contents(cloudflare, "wiki.example.com") == [("A", "203.0.113.10")]
    assert {c.body["name"] for c in cloudflare.writes() if c.body} == {"shop.example.com"}
    listed = table(await say(bot, "server list", ADMIN))
    assert listed.columns[:3] == ("server", "address", "public")
    assert [r[:3] for r in listed.rows] == [
        ("eu-1", "ssh://root@eu-1", "198.51.100.11"),
        ("eu-2", "ssh://root@eu-2", "none"),
        ("eu-3", "ssh://root@eu-3", "none"),
    ]
    bot.engine.store.flush_audit()
    audited = [(r["command"], r["result"]) for r in bot.engine.store.audit_log()]
    assert ("server address eu-1 198.51.100.11", "ok") in audited


async def test_server_address_refuses_bad_input_and_changes_nothing(fleet, cloudflare):
    bot, _ = fleet
    store = bot.engine.store
    before = store.servers()
    unknown = failure(await say(bot, "server address eu-9 192.0.2.9", ADMIN))
    assert unknown.message == (
        "no server named 'eu-9': `server list` shows the ones added from chat; nothing was changed"
    )
    own = failure(await say(bot, "server address local 192.0.2.9", ADMIN))
    assert "the control plane's own: dns.addresses in shipbot.yml" in own.message
    bad = failure(await say(bot, "server address eu-1 192.0.2.300", ADMIN))
    assert bad.kind == "usage" and "'192.0.2.300' is not an IPv4 or IPv6 address" in bad.message
    denied = failure(await say(bot, "server address eu-1 192.0.2.9", "console:vera"))
    assert denied.kind == "denied"
    assert store.servers() == before and cloudflare.writes() == []


def test_address_options_parse_repeat_and_render_back():
    added = parse(
        "server add eu-4 ssh://root@10.0.0.4 --address 203.0.113.10 --address 2001:DB8::10"
    )
    assert added.address == ("203.0.113.10", "2001:db8::10")
    assert parse(render(added)) == added
    assert parse("server add eu-4 ssh://root@10.0.0.4").address == ()
    assert parse("server address eu-4 203.0.113.10,203.0.113.11").addresses == (
        "203.0.113.10",
        "203.0.113.11",
    )
    assert parse("server address eu-4 none").addresses == ()
    assert render(parse("server address eu-4 none")) == "server address eu-4 none"
    with pytest.raises(UsageError, match="--address given twice with 203.0.113.10"):
        parse("server add eu-4 ssh://root@h --address 203.0.113.10 --address 203.0.113.10")
    with pytest.raises(UsageError, match="'eu-4.example' is not an IPv4 or IPv6 address"):
        parse("server add eu-4 ssh://root@h --address eu-4.example")


def test_targets_prefer_what_was_recorded_then_shipbot_yml_then_the_own_server():
    config = DnsConfig(zone="example.com", target="lb.example.net", servers={"eu-2": ["::2"]})
    assert targets(config, "eu-1", "local", ["192.0.2.1"]) == [("A", "192.0.2.1")]
    assert targets(config, "eu-2", "local", []) == [("AAAA", "::2")]
    assert targets(config, "local", "local", []) == [("CNAME", "lb.example.net")]
    with pytest.raises(DnsError, match="server eu-3 has no public address recorded"):
        targets(config, "eu-3", "local", [])
    apart = DnsConfig(zone="example.com")
    with pytest.raises(DnsError, match="server eu-3 has no public address recorded"):
        targets(apart, "eu-3", None, [])


def test_shipbot_yml_names_a_bad_server_address(tmp_path: Path):
    (tmp_path / "shipbot.yml").write_text(
        "dns: {zone: example.com, servers: {eu-1: [198.51.100.300]}}\n"
    )
    with pytest.raises(ConfigError, match="dns.servers: Value error, eu-1: '198.51.100.300' is"):
        load_config(tmp_path)
    # apart, each server's addresses may come from chat alone
    (tmp_path / "shipbot.yml").write_text("local: false\ndns: {zone: example.com}\n")
    assert load_config(tmp_path).dns == DnsConfig(zone="example.com")
    (tmp_path / "shipbot.yml").write_text("dns: {zone: example.com}\n")
    with pytest.raises(ConfigError, match="set either 'addresses' .A/AAAA. or 'target'"):
        load_config(tmp_path)
