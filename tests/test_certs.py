"""Certificate facts, Traefik's ACME log lines, routed domains, and the watcher's state
machine, exactly; the watcher's executor against a fake swarm and a TLS server on loopback."""

import datetime as dt
import json

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from commands.catalog.certs import cert_rows
from commands.notify import Notifier
from commands.replies import Message, decode
from core.config import NotifyRoute
from core.edge.certs import (
    AcmeOutcome,
    CertError,
    CertFacts,
    acme_outcomes,
    parse_certificate,
    probe,
    routed_domains,
)
from core.store import Store
from core.swarm.testing import FakeSwarm
from core.swarm.testing.orchestrator import Behaviour
from core.watch.certs import (
    EXPIRY,
    FAILED,
    CertState,
    CertWatch,
    DomainFacts,
    EdgeReader,
    Post,
    step,
)
from tests.certgen import make_ca, make_leaf, pem, tls_server
from tests.clock import ManualClock

UTC = dt.UTC
JAN = dt.datetime(2026, 1, 1, tzinfo=UTC)
APR = dt.datetime(2026, 4, 1, tzinfo=UTC)


def facts(serial: str = "a1", not_before=JAN, not_after=APR, sans=("api.example.com",)):
    return CertFacts("api.example.com", "R11", serial, not_before, not_after, tuple(sans))


def test_a_pem_chain_gives_its_leaf_and_der_the_same_facts():
    ca = make_ca("Pebble Intermediate CA 6fc6bf")
    leaf, _ = make_leaf(ca, ["app.acme.test", "www.acme.test"])
    expected = CertFacts(
        subject="app.acme.test",
        issuer="Pebble Intermediate CA 6fc6bf",
        serial="2d101d1a30017055",
        not_before=JAN,
        not_after=APR,
        sans=("app.acme.test", "www.acme.test"),
    )
    assert parse_certificate(pem(leaf) + pem(ca[0])) == expected
    assert parse_certificate(leaf.public_bytes(Encoding.DER)) == expected


def test_garbage_is_a_cert_error():
    with pytest.raises(CertError, match="not a certificate"):
        parse_certificate(b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")


def test_names_a_certificate_covers():
    cert = facts(sans=("api.example.com", "*.apps.example.com"))
    assert cert.covers("api.example.com") and cert.covers("API.example.com")
    assert cert.covers("x.apps.example.com")
    assert not cert.covers("apps.example.com")
    assert not cert.covers("a.b.apps.example.com")
    assert not cert.covers("example.com")


def test_days_left_counts_whole_days_and_goes_negative():
    cert = facts()
    assert cert.days_left(dt.datetime(2026, 3, 18, 0, 0, 1, tzinfo=UTC)) == 13
    assert cert.days_left(dt.datetime(2026, 3, 18, tzinfo=UTC)) == 14
    assert cert.days_left(dt.datetime(2026, 4, 1, 0, 0, 1, tzinfo=UTC)) == -1


def log(**entry):
    return json.dumps(entry)


def test_acme_outcomes_keep_the_latest_per_domain_and_the_error_verbatim():
    error = (
        "unable to generate a certificate for the domains [fail.acme.test]: error: one or more "
        "domains had a problem:\n[fail.acme.test] acme: error: 400 :: "
        "urn:ietf:params:acme:error:connection :: could not resolve URL"
    )
    lines = [
        log(
            level="error",
            time="2026-01-01T10:00:00Z",
            message="Unable to obtain ACME certificate for domains",
            error="first",
            domains=["ok.acme.test"],
        ),
        log(
            level="info",
            time="2026-01-01T10:00:05Z",
            message="Server responded with a certificate.",
            domains="ok.acme.test",
        ),
        log(
            level="debug",
            time="2026-01-01T10:00:06Z",
            message="Certificates obtained for domains [a.acme.test b.acme.test]",
        ),
        log(
            level="error",
            time="2026-01-01T10:00:07Z",
            message="Unable to obtain ACME certificate for domains",
            error=error,
            domains=["fail.acme.test"],
        ),
        log(
            level="info",
            time="2026-01-01T09:00:00Z",
            message="Server responded with a certificate.",
            domains="fail.acme.test",
        ),
        log(level="debug", time="2026-01-01T10:00:08Z", message="Testing certificate renew..."),
        "not json at all",
        "[1, 2]",
    ]
    t = lambda s: dt.datetime(2026, 1, 1, 10, 0, s, tzinfo=UTC)  # noqa: E731
    assert acme_outcomes(lines) == {
        "ok.acme.test": AcmeOutcome(t(5), True),
        "a.acme.test": AcmeOutcome(t(6), True),
        "b.acme.test": AcmeOutcome(t(6), True),
        "fail.acme.test": AcmeOutcome(t(7), False, error),
    }


def service(app, env, **labels):
    return {"Spec": {"Labels": {"shipbot.app": app, "shipbot.env": env, **labels}}}


def test_routed_domains_come_from_router_rules_of_shipbots_services():
    services = [
        service(
            "api",
            "production",
            **{
                "traefik.http.routers.api-production.rule": "Host(`api.example.com`) && "
                "PathPrefix(`/v1`) || Host(`WWW.example.com`)",
                "traefik.http.routers.api-production-http.rule": "Host(`api.example.com`)",
                "traefik.http.services.api-production.loadbalancer.server.port": "8080",
            },
        ),
        service("hello", "staging", **{"traefik.http.routers.h.rule": "Host( `s.example.com` )"}),
        service("quiet", "production"),
        {"Spec": {"Labels": {"traefik.http.routers.x.rule": "Host(`foreign.example.com`)"}}},
    ]
    assert [(r.app, r.env, r.domain) for r in routed_domains(services)] == [
        ("api", "production", "api.example.com"),
        ("hello", "staging", "s.example.com"),
        ("api", "production", "www.example.com"),
    ]


DEFAULT = CertFacts("TRAEFIK DEFAULT CERT", "TRAEFIK DEFAULT CERT", "9", JAN, APR, ("x.invalid",))
MAR = dt.datetime(2026, 3, 1, tzinfo=UTC)
NOW = dt.datetime(2026, 1, 2, tzinfo=UTC)


def api(served, outcome=None):
    return DomainFacts("api", "production", "api.example.com", served, outcome)


def run(items, previous, now=NOW):
    return step(items, {s.domain: s for s in previous}, now)


def test_first_certificate_is_an_issuance_and_the_same_one_again_is_silent():
    posts, states = run([api(facts())], [])
    assert posts == [
        Post(
            "api",
            "production",
            "🔒 certificate issued for api.example.com, valid until 2026-04-01 00:00 UTC "
            "(by R11; serial a1)",
        )
    ]
    kept = CertState("api", "production", "api.example.com", "a1", APR.timestamp())
    assert states == {"api.example.com": kept}
    assert run([api(facts())], [kept]) == ([], {"api.example.com": kept})


def test_a_new_serial_is_a_renewal():
    kept = CertState("api", "production", "api.example.com", "a1", APR.timestamp())
    new_after = dt.datetime(2026, 6, 1, tzinfo=UTC)
    posts, states = run([api(facts("b2", MAR, new_after))], [kept], now=MAR)
    assert [p.text for p in posts] == [
        "🔁 certificate renewed for api.example.com, valid until 2026-06-01 00:00 UTC "
        "(was until 2026-04-01 00:00 UTC; serial b2)"
    ]
    assert states["api.example.com"].serial == "b2"
    assert states["api.example.com"].not_after == new_after.timestamp()


def test_expiry_alert_14_days_before_once_then_closed_by_the_renewal():
    kept = CertState("api", "production", "api.example.com", "a1", APR.timestamp())
    fifteen = dt.datetime(2026, 3, 17, tzinfo=UTC)
    assert run([api(facts())], [kept], now=fifteen) == ([], {"api.example.com": kept})
    thirteen = dt.datetime(2026, 3, 18, 12, tzinfo=UTC)
    posts, states = run([api(facts())], [kept], now=thirteen)
    assert [p.text for p in posts] == [
        "⚠️ certificate for api.example.com expires in 13 days (2026-04-01 00:00 UTC) and has "
        "not been renewed: check the proxy's log (`logs` of the edge service) and the domain's DNS"
    ]
    alerted = states["api.example.com"]
    assert alerted.alert == EXPIRY
    assert run([api(facts())], [alerted], now=thirteen + dt.timedelta(days=5)) == (
        [],
        {"api.example.com": alerted},
    )
    renewed = facts("b2", thirteen, dt.datetime(2026, 6, 16, 12, tzinfo=UTC))
    posts, states = run([api(renewed)], [alerted], now=thirteen)
    assert [p.text for p in posts] == [
        "🔁 certificate renewed for api.example.com, valid until 2026-06-16 12:00 UTC "
        "(was until 2026-04-01 00:00 UTC; serial b2); the expiry alert is closed"
    ]
    assert states["api.example.com"].alert == ""


def test_an_expired_certificate_says_so():
    kept = CertState("api", "production", "api.example.com", "a1", APR.timestamp())
    posts, _ = run([api(facts())], [kept], now=dt.datetime(2026, 4, 2, tzinfo=UTC))
    assert posts[0].text.startswith("⚠️ certificate for api.example.com has expired (2026-04-01")


def test_a_short_lived_certificate_is_alerted_on_in_proportion_to_its_life():
    start = dt.datetime(2026, 1, 1, 12, tzinfo=UTC)
    five_minutes = facts("c3", start, start + dt.timedelta(minutes=5))
    kept = CertState(
        "api", "production", "api.example.com", "c3", five_minutes.not_after.timestamp()
    )
    # 300 s × 14/90 = 46.7 s before the end
    assert run([api(five_minutes)], [kept], now=start + dt.timedelta(seconds=253))[0] == []
    assert len(run([api(five_minutes)], [kept], now=start + dt.timedelta(seconds=254))[0]) == 1


ERROR = (
    "unable to generate a certificate for the domains [api.example.com]: error: one or more "
    "domains had a problem:\n[api.example.com] acme: error: 400 :: POST :: "
    "urn:ietf:params:acme:error:dns :: DNS problem: SERVFAIL looking up A for api.example.com"
)


def test_failed_issuance_posts_the_acme_error_once_and_the_issuance_closes_it():
    failed = AcmeOutcome(dt.datetime(2026, 1, 2, 10, tzinfo=UTC), False, ERROR)
    posts, states = run([api(DEFAULT, failed)], [])
    assert [p.text for p in posts] == [
        f"❌ certificate for api.example.com could not be obtained: {ERROR}"
    ]
    alerted = CertState("api", "production", "api.example.com", alert=FAILED, error=ERROR)
    assert states == {"api.example.com": alerted}
    assert run([api(DEFAULT, failed)], [alerted]) == ([], {"api.example.com": alerted})
    issued = facts(not_before=dt.datetime(2026, 1, 2, 10, 5, tzinfo=UTC))
    posts, states = run([api(issued, failed)], [alerted])
    assert [p.text for p in posts] == [
        "🔒 certificate issued for api.example.com, valid until 2026-04-01 00:00 UTC "
        "(by R11; serial a1); the failed issuance is resolved"
    ]
    assert states["api.example.com"].alert == ""


def test_a_failed_renewal_is_alerted_while_the_old_certificate_is_served():
    kept = CertState("api", "production", "api.example.com", "a1", APR.timestamp())
    old_failure = AcmeOutcome(dt.datetime(2025, 12, 31, tzinfo=UTC), False, "older")
    assert run([api(facts(), old_failure)], [kept])[0] == []
    failure = AcmeOutcome(MAR, False, ERROR)
    posts, states = run([api(facts(), failure)], [kept], now=MAR)
    assert [p.text for p in posts] == [
        f"❌ certificate for api.example.com could not be obtained: {ERROR}"
    ]
    success = AcmeOutcome(MAR + dt.timedelta(hours=1), True)
    posts, states = run([api(facts(), success)], [states["api.example.com"]], now=MAR)
    assert [p.text for p in posts] == [
        "✅ certificate for api.example.com is served again, valid until 2026-04-01 00:00 UTC; "
        "the failed issuance is resolved"
    ]
    assert states["api.example.com"] == kept


def test_an_unreachable_proxy_keeps_state_and_a_domain_no_longer_routed_is_forgotten():
    kept = CertState("api", "production", "api.example.com", "a1", APR.timestamp(), EXPIRY)
    other = CertState("old", "production", "old.example.com", "z9", APR.timestamp())
    assert run([api(None)], [kept, other]) == ([], {"api.example.com": kept})


def fake_service(swarm, name, image, labels):
    swarm.create_service(
        {
            "Name": name,
            "Labels": labels,
            "TaskTemplate": {"ContainerSpec": {"Image": image}},
            "Mode": {"Replicated": {"Replicas": 1}},
            "UpdateConfig": {},
            "RollbackConfig": {},
            "EndpointSpec": {},
        }
    )


async def test_the_watcher_reads_the_edge_and_posts_through_the_outbox_once(tmp_path):
    ca = make_ca("Pebble Intermediate CA 6fc6bf")
    now = dt.datetime.now(UTC)
    default = make_leaf(ca, ["traefik.default"], cn="TRAEFIK DEFAULT CERT", serial=9)
    issued = make_leaf(
        ca, ["api.example.com"], serial=0xABC, not_before=now, not_after=now + dt.timedelta(days=90)
    )
    swarm = FakeSwarm()

    failure = log(
        level="error",
        time=now.isoformat(),
        message="Unable to obtain ACME certificate for domains",
        error=ERROR.replace("api.example.com", "fail.example.com"),
        domains=["fail.example.com"],
    )
    swarm.add_image("traefik:test", Behaviour(log=("{not json", failure)))
    fake_service(swarm, "shipbot-edge", "traefik:test", {})
    swarm.add_image("shipbot/api:1")
    for app, domain in (("api", "api.example.com"), ("fail", "fail.example.com")):
        rule = {f"traefik.http.routers.{app}-production.rule": f"Host(`{domain}`)"}
        labels = {"shipbot.app": app, "shipbot.env": "production", **rule}
        fake_service(swarm, f"{app}-production", "shipbot/api:1", labels)
    swarm.step()
    store = Store(tmp_path / "shipbot.db")
    notifier = Notifier(store, [NotifyRoute(platform="console", channel="ops", kinds=["certs"])])

    async def client():
        return swarm

    clock = ManualClock.at(now)
    with tls_server({"*": default, "api.example.com": issued}, tmp_path) as port:
        reader = EdgeReader(
            client, addresses=["127.0.0.1"], https_port=port, proxy_service="shipbot-edge"
        )
        watch = CertWatch(
            reader,
            store,
            lambda post: notifier.publish("certs", post.app, post.env, Message(post.text)),
            clock=clock,
        )
        first = await watch.check()
        assert await watch.check() == []
        clock.advance(80 * 24 * 3600)
        expiring = await watch.check()
    assert [p.text.split(",")[0] for p in first] == [
        "🔒 certificate issued for api.example.com",
        "❌ certificate for fail.example.com could not be obtained: unable to generate a "
        "certificate for the domains [fail.example.com]: error: one or more domains had a problem:"
        "\n[fail.example.com] acme: error: 400 :: POST :: urn:ietf:params:acme:error:dns :: DNS "
        "problem: SERVFAIL looking up A for fail.example.com",
    ]
    assert [p.text.split(" (")[0] for p in expiring] == [
        "⚠️ certificate for api.example.com expires in 9 days"
    ]
    rows = store.due_messages("console", now=dt.datetime.now(UTC).timestamp() + 1)
    assert [(r["channel"], r["kind"]) for r in rows] == [("ops", "certs")] * 3
    assert [decode(r["payload"]) for r in rows] == [Message(p.text) for p in first + expiring]
    assert {s["domain"]: s["alert"] for s in store.cert_states()} == {
        "api.example.com": EXPIRY,
        "fail.example.com": FAILED,
    }
    store.close()


def test_probe_names_what_failed():
    with pytest.raises(CertError, match=r"TLS handshake with 127.0.0.1:1 for a.example.com failed"):
        probe("127.0.0.1", 1, "a.example.com", timeout=1)


def test_the_certs_table_rows():
    failed = AcmeOutcome(dt.datetime(2026, 1, 2, 10, tzinfo=UTC), False, ERROR)
    items = [
        api(facts()),
        api(facts(), AcmeOutcome(MAR, False, "rate limited")),
        DomainFacts("web", "staging", "web.example.com", DEFAULT, failed),
        DomainFacts("web", "staging", "new.example.com", DEFAULT),
        DomainFacts("web", "staging", "down.example.com", None),
    ]
    assert cert_rows(items, dt.datetime(2026, 3, 18, 12, tzinfo=UTC)) == (
        ("api.example.com", "api", "production", "R11", "2026-04-01 00:00 UTC", "13", ""),
        (
            "api.example.com",
            "api",
            "production",
            "R11",
            "2026-04-01 00:00 UTC",
            "13",
            "renewal failed: rate limited",
        ),
        ("web.example.com", "web", "staging", "", "", "", f"not issued: {ERROR}"),
        (
            "new.example.com",
            "web",
            "staging",
            "",
            "",
            "",
            "not issued yet (the edge serves 'TRAEFIK DEFAULT CERT')",
        ),
        (
            "down.example.com",
            "web",
            "staging",
            "",
            "",
            "",
            "the edge did not answer (is the proxy running? `proxy status`)",
        ),
    )
