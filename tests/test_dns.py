"""Cloudflare DNS for app domains: exact builders, shipbot's client against a local fake of the
API, and the real dispatcher on the fake swarm."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from commands.dispatch import Dispatcher
from commands.replies import ApprovalRequest, Message
from core.clients import Clients
from core.config import ConfigError, ControlConfig, DnsConfig, load_config
from core.edge import cloudflare
from core.edge.dns import Action, DnsError, Record, desired, diff
from core.engine import Engine
from core.secrets import Vault
from core.store import Store
from core.swarm.servers import Servers
from tests.chat import failure, result, say, table
from tests.clock import SwarmSteps
from tests.fake_cloudflare import FakeCloudflare
from tests.fast_plane import fake_swarm

TOKEN = "cf-token-0123456789abcdef"
ZONE_ID = "023e105f4ecef8ad"
RECORDS = f"zones/{ZONE_ID}/dns_records"
MINE = "managed by shipbot: shop/production"
ADMIN = "console:root"
NETWORK = Clients()  # the plane's factory with no fake transport: the loopback fake API


@pytest.fixture(autouse=True)
def _no_cloudflare_env(monkeypatch):
    for key in list(os.environ):
        if key.startswith("CLOUDFLARE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)


@pytest.fixture
async def fake():
    server = await FakeCloudflare(tokens={TOKEN: {"example.com"}}).start()
    yield server
    await server.stop()


def config(fake: FakeCloudflare | None = None, **changes) -> DnsConfig:
    values = {"zone": "example.com", "addresses": ["203.0.113.10"], **changes}
    if fake is not None:
        values["api_url"] = fake.base_url
    return DnsConfig(**values)


def mine(name: str, kind: str, content: str, rid: str = "", **extra) -> Record:
    return Record(name, kind, content, comment=MINE, id=rid, **extra)


# builders


def test_desired_records_point_each_domain_at_every_address():
    dns = config(addresses=["2001:DB8::10", "203.0.113.10"])
    assert desired("shop", "production", ["shop.example.com", "example.com"], dns) == [
        Record("example.com", "A", "203.0.113.10", comment=MINE),
        Record("example.com", "AAAA", "2001:db8::10", comment=MINE),
        Record("shop.example.com", "A", "203.0.113.10", comment=MINE),
        Record("shop.example.com", "AAAA", "2001:db8::10", comment=MINE),
    ]


def test_a_cname_target_and_proxied_records_whose_ttl_is_automatic():
    dns = config(addresses=[], target="LB.example.net.", proxied=True, ttl=300)
    assert desired("shop", "staging", ["shop.example.com"], dns) == [
        Record(
            "shop.example.com",
            "CNAME",
            "lb.example.net",
            proxied=True,
            ttl=1,
            comment="managed by shipbot: shop/staging",
        )
    ]
    assert desired("shop", "staging", ["shop.example.com"], config(ttl=300))[0].ttl == 300


def test_a_domain_outside_the_zone_is_refused():
    with pytest.raises(DnsError) as caught:
        desired("shop", "production", ["shop.example.com", "shop.example.org"], config())
    assert str(caught.value) == (
        "shop.example.org is not in zone example.com: shipbot manages records only there"
    )


def test_diff_creates_updates_keeps_and_deletes():
    want = desired("shop", "production", ["a.example.com", "b.example.com"], config())
    existing = [
        mine("a.example.com", "A", "198.51.100.7", "r1"),  # the address changed
        mine("b.example.com", "A", "203.0.113.10", "r2"),  # right already
        mine("b.example.com", "AAAA", "2001:db8::1", "r3"),  # an address no longer listed
        mine("old.example.com", "A", "203.0.113.10", "r4"),  # a domain dropped from app.yml
    ]
    assert diff(want, existing, "shop", "production") == [
        Action("delete", old=existing[2]),
        Action("delete", old=existing[3]),
        Action("update", want[0], existing[0]),
        Action("keep", want[1], existing[1]),
    ]
    assert diff(want, [], "shop", "production") == [Action("create", r) for r in want]


def test_diff_updates_a_record_whose_proxying_changed_and_switches_a_to_cname():
    want = desired("shop", "production", ["a.example.com"], config(proxied=True))
    old = mine("a.example.com", "A", "203.0.113.10", "r1")
    assert diff(want, [old], "shop", "production") == [Action("update", want[0], old)]
    cname = desired("shop", "production", ["a.example.com"], config(addresses=[], target="x.net"))
    assert diff(cname, [old], "shop", "production") == [
        Action("delete", old=old),
        Action("create", cname[0]),
    ]


def test_a_name_held_by_a_person_or_another_app_is_refused_whole():
    want = desired("shop", "production", ["a.example.com", "b.example.com"], config())
    theirs = [
        Record("a.example.com", "A", "192.0.2.1", id="r1"),
        Record("b.example.com", "CNAME", "x.net", comment="managed by shipbot: blog/production"),
        Record("b.example.com", "TXT", "v=spf1 -all", id="r3"),  # other types may stay
    ]
    with pytest.raises(DnsError) as caught:
        diff(want, theirs, "shop", "production")
    assert str(caught.value) == (
        "a.example.com has a A record (192.0.2.1) that shipbot did not make: remove it in "
        "Cloudflare to let shipbot manage it; b.example.com has a CNAME record (x.net) of app "
        "blog (production): one name serves one app"
    )


def test_the_dns_section_names_the_key_at_fault(tmp_path: Path):
    (tmp_path / "shipbot.yml").write_text(
        "dns: {zone: example.com, addresses: [203.0.113.300], token: plain}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    message = str(caught.value)
    assert "dns.addresses: Value error, '203.0.113.300' is not an IPv4 or IPv6 address" in message
    assert "dns.token: Extra inputs are not permitted" in message
    (tmp_path / "shipbot.yml").write_text("dns: {zone: example.com}\n")
    with pytest.raises(ConfigError, match="set either 'addresses' .A/AAAA. or 'target'"):
        load_config(tmp_path)
    (tmp_path / "shipbot.yml").write_text(
        "dns: {zone: Example.COM, target: lb.example.net, proxied: true}\n"
    )
    assert load_config(tmp_path).dns == DnsConfig(
        zone="example.com", target="lb.example.net", proxied=True
    )


# shipbot's client against the fake API


async def test_sync_creates_then_changes_nothing(fake):
    actions = await cloudflare.sync(
        config(fake), "shop", "production", ["shop.example.com"], NETWORK
    )
    assert [a.kind for a in actions] == ["create"]
    assert [(c.method, c.path, c.body) for c in fake.writes()] == [
        (
            "POST",
            RECORDS,
            {
                "name": "shop.example.com",
                "type": "A",
                "content": "203.0.113.10",
                "proxied": False,
                "ttl": 1,
                "comment": MINE,
            },
        )
    ]
    assert fake.calls[0].path == "zones" and fake.calls[0].query == {"name": "example.com"}
    fake.calls.clear()
    again = await cloudflare.sync(config(fake), "shop", "production", ["shop.example.com"], NETWORK)
    assert [a.kind for a in again] == ["keep"]
    assert fake.writes() == []
    assert {c.method for c in fake.calls} == {"GET"}


async def test_sync_patches_a_record_whose_address_changed(fake):
    await cloudflare.sync(config(fake), "shop", "production", ["shop.example.com"], NETWORK)
    rid = fake.of("shop.example.com")[0]["id"]
    fake.calls.clear()
    moved = config(fake, addresses=["198.51.100.20"])
    actions = await cloudflare.sync(moved, "shop", "production", ["shop.example.com"], NETWORK)
    assert [a.shown for a in actions] == [
        "updated A shop.example.com → 198.51.100.20 (was 203.0.113.10)"
    ]
    assert [(c.method, c.path, c.body["content"]) for c in fake.writes()] == [
        ("PATCH", f"{RECORDS}/{rid}", "198.51.100.20")
    ]
    assert [(r["id"], r["content"]) for r in fake.of("shop.example.com")] == [
        (rid, "198.51.100.20")
    ]


async def test_a_wrong_token_is_refused_with_one_line_and_never_shown(fake, monkeypatch):
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "not-the-token-at-all")
    with pytest.raises(DnsError) as caught:
        await cloudflare.sync(config(fake), "shop", "production", ["shop.example.com"], NETWORK)
    assert str(caught.value) == ("Cloudflare refused the token: check its Zone.DNS edit permission")
    assert [c.status for c in fake.calls] == [403]
    assert fake.records == {}


async def test_a_read_only_token_is_refused_at_the_first_write(fake, monkeypatch):
    fake.tokens["read-only-token-1234"] = {"example.com"}
    fake.readonly.add("read-only-token-1234")
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "read-only-token-1234")
    with pytest.raises(DnsError, match="^Cloudflare refused the token: check its Zone.DNS edit"):
        await cloudflare.sync(config(fake), "shop", "production", ["shop.example.com"], NETWORK)
    assert [(c.method, c.status) for c in fake.writes()] == [("POST", 403)]


async def test_a_zone_the_token_cannot_see_and_a_missing_token(fake, monkeypatch):
    with pytest.raises(DnsError) as caught:
        await cloudflare.sync(
            config(fake, zone="example.org"), "shop", "production", ["shop.example.org"], NETWORK
        )
    assert str(caught.value) == "zone example.org not found for this token"
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN")
    with pytest.raises(DnsError, match="^no Cloudflare API token: set CLOUDFLARE_API_TOKEN"):
        await cloudflare.sync(config(fake), "shop", "production", ["shop.example.com"], NETWORK)


async def test_a_record_made_by_hand_is_left_alone(fake):
    fake.add("example.com", name="shop.example.com", type="A", content="192.0.2.1")
    with pytest.raises(DnsError, match="has a A record .192.0.2.1. that shipbot did not make"):
        await cloudflare.sync(config(fake), "shop", "production", ["shop.example.com"], NETWORK)
    assert fake.writes() == []


async def test_a_write_cloudflare_refuses_is_one_line_with_its_message(fake):
    fake.add("example.com", name="api.example.com", type="CNAME", content="y.net")
    async with cloudflare.zone(config(fake), TOKEN, NETWORK) as zone:
        with pytest.raises(DnsError) as caught:
            await zone.apply([Action("create", Record("api.example.com", "A", "203.0.113.10"))])
    assert str(caught.value) == (
        "Cloudflare refused to create A api.example.com: An A, AAAA, or CNAME record with "
        "that host already exists. (81053)"
    )


# the real dispatcher, on the fake swarm

APP_YML = """\
name: shop
image: shop:1
port: 8080
domains: [shop.example.com]
environments:
  staging: {domains: [staging.shop.example.com], approval: {approvers: [admin]}}
"""


def bot_with(home: Path, swarm, dns: DnsConfig) -> Dispatcher:
    engine = Engine(
        Store(home / "shipbot.db"),
        servers=Servers({"local": lambda: swarm}),
        home=home,
        vault=Vault.open(home),
        clock=SwarmSteps(swarm),
    )
    return Dispatcher(engine, ControlConfig(admins=[ADMIN], dns=dns))


@pytest.fixture
async def plane(tmp_path: Path, fake):
    home = tmp_path / "home"
    home.mkdir()
    folder = tmp_path / "shop"
    folder.mkdir()
    (folder / "app.yml").write_text(APP_YML)
    swarm = fake_swarm("shop:1")
    bot = bot_with(home, swarm, config(fake))
    assert result(await say(bot, f"apps add shop --path {folder}", ADMIN)).ok
    assert result(await say(bot, "domain grant shop shop.example.com", ADMIN)).ok
    grant = "domain grant shop staging.shop.example.com --env staging"
    assert result(await say(bot, grant, ADMIN)).ok
    yield bot, swarm, home
    bot.close()


async def test_a_deploy_creates_the_records_and_a_sync_then_changes_nothing(plane, fake):
    bot, swarm, home = plane
    done = result(await say(bot, "deploy shop", ADMIN))
    assert done.ok
    assert done.details[-1] == "DNS: created A shop.example.com → 203.0.113.10"
    assert [(r["type"], r["content"], r["comment"]) for r in fake.of("shop.example.com")] == [
        ("A", "203.0.113.10", MINE)
    ]
    fake.calls.clear()
    synced = result(await say(bot, "dns sync shop", ADMIN))
    assert synced.title == (
        "DNS of shop (production) in zone example.com: 0 created, 0 updated, 1 unchanged"
    )
    assert fake.writes() == []
    assert bot.engine.store.audit_log("shop")[0]["command"] == "dns sync shop"
    bot.close()
    # the cluster moved: the next sync updates the record in place
    moved = bot_with(home, swarm, config(fake, addresses=["198.51.100.20"]))
    redone = result(await say(moved, "dns sync shop", ADMIN))
    assert redone.details == ("updated A shop.example.com → 198.51.100.20 (was 203.0.113.10)",)
    assert [c.method for c in fake.writes()] == ["PATCH"]
    rows = table(await say(moved, "dns list", ADMIN)).rows
    assert rows == (("shop", "production", "shop.example.com", "A", "198.51.100.20", "no"),)
    moved.close()


async def test_a_dns_failure_does_not_undo_a_good_deploy(plane, fake, monkeypatch):
    bot, swarm, _ = plane
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "wrong-token-but-long")
    done = result(await say(bot, "deploy shop", ADMIN))
    assert done.ok and done.title == "shop release 1 is live on production"
    assert done.details[-1] == (
        "DNS not updated: Cloudflare refused the token: check its Zone.DNS edit permission; "
        "`dns sync shop` to try again"
    )
    assert bot.engine.store.releases("shop")[0].status == "live"
    refused = failure(await say(bot, "dns sync shop", ADMIN))
    assert refused.message == "Cloudflare refused the token: check its Zone.DNS edit permission"
    assert bot.engine.store.audit_log("shop")[0]["result"] == "failed"
    assert fake.records == {}


async def test_who_may_list_and_sync(plane, fake):
    bot, _, _ = plane
    assert result(await say(bot, "grant console:vera viewer --app shop", ADMIN)).ok
    assert isinstance((await say(bot, "dns list", "console:vera"))[0], Message)
    denied = failure(await say(bot, "dns sync shop", "console:vera"))
    assert denied.kind == "denied"
    # staging asks for approval: the sync waits for it, and nothing is written meanwhile
    held = await say(bot, "dns sync shop --env staging", ADMIN)
    assert any(isinstance(r, ApprovalRequest) for r in held)
    assert fake.writes() == []
    assert result(await say(bot, "dns sync shop --env staging --break-glass 'dns down'", ADMIN)).ok
    assert [r["comment"] for r in fake.of("staging.shop.example.com")] == [
        "managed by shipbot: shop/staging"
    ]


async def test_without_a_dns_section_the_commands_say_how_to_add_one(tmp_path):
    swarm = fake_swarm()
    engine = Engine(
        Store(tmp_path / "shipbot.db"),
        servers=Servers({"local": lambda: swarm}),
        home=tmp_path,
        vault=Vault.open(tmp_path),
        clock=SwarmSteps(swarm),
    )
    bot = Dispatcher(engine, ControlConfig(admins=[ADMIN]))
    assert failure(await say(bot, "dns list", ADMIN)).message.startswith(
        "DNS is not configured: add a `dns:` section"
    )
    bot.close()


async def test_the_token_is_masked_in_any_dns_error(fake):
    with pytest.raises(DnsError) as caught:
        async with cloudflare.zone(config(fake), TOKEN, NETWORK):
            raise DnsError(f"an answer that echoed {TOKEN} back")
    assert str(caught.value) == "an answer that echoed •••••• back"


# the envelope, pages and retries, on httpx's MockTransport


def mock_api(handler, backoff: float = 0.0, per_page: int = 5) -> cloudflare.Api:
    clients = Clients(dns_transport=httpx.MockTransport(handler))
    client = clients.dns(config(api_url="http://cf.invalid/"), TOKEN)
    return cloudflare.Api(client, backoff=backoff, per_page=per_page)


async def test_a_list_follows_every_page_and_sends_its_filters():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        query = dict(request.url.params)
        seen.append(query)
        page = int(query["page"])
        result = [{"id": f"r{page}{i}"} for i in range(5 if page < 3 else 2)]
        info = {"page": page, "per_page": 5, "total_pages": 3}
        return httpx.Response(200, json={"success": True, "result": result, "result_info": info})

    items = await mock_api(handler).pages("zones/z/dns_records", {"name.exact": "a.b"}, "list")
    assert len(items) == 12
    assert seen == [{"name.exact": "a.b", "page": str(p), "per_page": "5"} for p in (1, 2, 3)]


async def test_a_busy_answer_is_retried_twice_then_named():
    statuses = iter([429, 503, 200])
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        status = next(statuses)
        body = {"success": status == 200, "result": [{"id": "z1"}], "errors": []}
        return httpx.Response(status, json=body)

    assert await mock_api(handler).call("GET", "zones", "find zone") == [{"id": "z1"}]
    assert calls == ["GET"] * 3

    def always_busy(request: httpx.Request) -> httpx.Response:
        calls.append("busy")
        body = {"success": False, "errors": [{"code": 10429, "message": "rate limited"}]}
        return httpx.Response(429, json=body)

    calls.clear()
    with pytest.raises(DnsError) as caught:
        await mock_api(always_busy).call("GET", "zones", "find zone example.com")
    assert str(caught.value) == "Cloudflare refused to find zone example.com: rate limited (10429)"
    assert len(calls) == 3


async def test_a_timeout_a_dropped_connection_and_a_page_that_is_not_json_are_one_line():
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    def html(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>bad gateway</html>")

    with pytest.raises(DnsError, match="^Cloudflare did not answer in time to list records$"):
        await mock_api(timeout).call("GET", "zones/z/dns_records", "list records")
    with pytest.raises(DnsError, match="^cannot reach Cloudflare's API to list records: conn"):
        await mock_api(refused).call("GET", "zones/z/dns_records", "list records")
    with pytest.raises(DnsError, match="^Cloudflare answered 502 with no JSON to list records"):
        await mock_api(html).call("GET", "zones/z/dns_records", "list records")


async def test_the_zone_speaks_through_the_planes_factory_with_the_token_alone(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")  # never used: trust_env off
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, str(request.url), request.headers["authorization"]))
        return httpx.Response(200, json={"success": True, "result": [{"id": ZONE_ID}]})

    clients = Clients(dns_transport=httpx.MockTransport(handler))
    async with cloudflare.zone(config(api_url="http://cf.invalid/v4"), TOKEN, clients) as zone:
        assert zone.id == ZONE_ID
    assert seen == [("GET", "http://cf.invalid/v4/zones?name=example.com", f"Bearer {TOKEN}")]
