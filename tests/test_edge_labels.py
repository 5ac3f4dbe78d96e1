"""Routing in app.yml: validation, and the Traefik labels it becomes, compared whole."""

from __future__ import annotations

import pytest

from core.appspec import parse_app_config
from core.edge.certs import routed_domains
from core.edge.labels import rule, traefik_labels, urls
from core.edge.operate import routes_of
from core.errors import AppSpecError
from core.host_rules import host_rule, routed_hosts

APP = """\
name: api
image: team/api:1
port: 8080
domains: [api.example.com]
environments:
  staging: {domains: [staging.api.example.com], https: false}
"""


def test_https_app_exact():
    spec = parse_app_config(APP).for_env("production")
    assert traefik_labels(spec, "production") == {
        "traefik.enable": "true",
        "traefik.swarm.lbswarm": "false",
        "traefik.swarm.network": "shipbot-api-production",
        "traefik.http.services.api-production.loadbalancer.server.port": "8080",
        "traefik.http.middlewares.api-production-retry.retry.attempts": "4",
        "traefik.http.middlewares.api-production-retry.retry.initialinterval": "50ms",
        "traefik.http.routers.api-production.rule": "Host(`api.example.com`)",
        "traefik.http.routers.api-production.service": "api-production",
        "traefik.http.routers.api-production.middlewares": "api-production-retry",
        "traefik.http.routers.api-production.priority": "10000",
        "traefik.http.routers.api-production.entrypoints": "websecure",
        "traefik.http.routers.api-production.tls": "true",
        "traefik.http.routers.api-production.tls.certresolver": "shipbot",
        "traefik.http.routers.api-production-http.rule": "Host(`api.example.com`)",
        "traefik.http.routers.api-production-http.entrypoints": "web",
        "traefik.http.routers.api-production-http.service": "api-production",
        "traefik.http.routers.api-production-http.middlewares": "api-production-https",
        "traefik.http.routers.api-production-http.priority": "10000",
        "traefik.http.middlewares.api-production-https.redirectscheme.scheme": "https",
        "traefik.http.middlewares.api-production-https.redirectscheme.permanent": "true",
    }


def test_wildcard_domains_exact():
    """A wildcard beside an exact name gets a router of its own, at the lowest priority."""
    spec = parse_app_config(
        "name: api\nimage: team/api:1\nport: 8080\ndomains: ['*.example.com', api.example.com]\n"
    ).base
    exact = "traefik.http.routers.api-production"
    wild = "traefik.http.routers.api-production-wildcard"
    regexp = "HostRegexp(`^[a-z0-9-]+\\.example\\.com$`)"
    assert traefik_labels(spec, "production") == {
        "traefik.enable": "true",
        "traefik.swarm.lbswarm": "false",
        "traefik.swarm.network": "shipbot-api-production",
        "traefik.http.services.api-production.loadbalancer.server.port": "8080",
        "traefik.http.middlewares.api-production-retry.retry.attempts": "4",
        "traefik.http.middlewares.api-production-retry.retry.initialinterval": "50ms",
        f"{exact}.rule": "Host(`api.example.com`)",
        f"{exact}.service": "api-production",
        f"{exact}.middlewares": "api-production-retry",
        f"{exact}.priority": "10000",
        f"{exact}.entrypoints": "websecure",
        f"{exact}.tls": "true",
        f"{exact}.tls.certresolver": "shipbot",
        f"{exact}-http.rule": "Host(`api.example.com`)",
        f"{exact}-http.entrypoints": "web",
        f"{exact}-http.service": "api-production",
        f"{exact}-http.middlewares": "api-production-https",
        f"{exact}-http.priority": "10000",
        f"{wild}.rule": regexp,
        f"{wild}.service": "api-production",
        f"{wild}.middlewares": "api-production-retry",
        f"{wild}.priority": "1",
        f"{wild}.tls.domains[0].main": "*.example.com",
        f"{wild}.entrypoints": "websecure",
        f"{wild}.tls": "true",
        f"{wild}.tls.certresolver": "shipbot-dns",
        f"{wild}-http.rule": regexp,
        f"{wild}-http.entrypoints": "web",
        f"{wild}-http.service": "api-production",
        f"{wild}-http.middlewares": "api-production-https",
        f"{wild}-http.priority": "1",
        "traefik.http.middlewares.api-production-https.redirectscheme.scheme": "https",
        "traefik.http.middlewares.api-production-https.redirectscheme.permanent": "true",
    }
    # read back from the labels, by the one reader: what claims, certificates and status see
    labels = traefik_labels(spec, "production")
    routed = routed_domains([{"Spec": {"Labels": {**labels,
        "shipbot.app": "api", "shipbot.env": "production"}}}])  # fmt: skip
    assert [r.domain for r in routed] == ["*.example.com", "api.example.com"]
    assert routes_of(labels, "api", "production") == (
        ["api.example.com", "*.example.com"],
        [],
        True,
    )


def test_a_wildcard_router_leaves_out_the_names_of_other_apps():
    spec = parse_app_config(
        "name: w\nimage: w:1\nport: 80\nhttps: false\npath_prefix: /api\n"
        "domains: ['*.example.com']\n"
    ).base
    labels = traefik_labels(spec, "production", excluded=("a.example.com", "b.example.com"))
    assert labels["traefik.http.routers.w-production.rule"] == (
        "HostRegexp(`^[a-z0-9-]+\\.example\\.com$`) && PathPrefix(`/api`) "
        "&& !(Host(`a.example.com`) || Host(`b.example.com`))"
    )
    # the names it leaves out are not read back as its own
    routed = routed_domains([{"Spec": {"Labels": {**labels,
        "shipbot.app": "w", "shipbot.env": "production"}}}])  # fmt: skip
    assert [r.domain for r in routed] == ["*.example.com"]


def test_plain_http_environment_exact():
    spec = parse_app_config(APP).for_env("staging")
    assert traefik_labels(spec, "staging") == {
        "traefik.enable": "true",
        "traefik.swarm.lbswarm": "false",
        "traefik.swarm.network": "shipbot-api-staging",
        "traefik.http.services.api-staging.loadbalancer.server.port": "8080",
        "traefik.http.middlewares.api-staging-retry.retry.attempts": "4",
        "traefik.http.middlewares.api-staging-retry.retry.initialinterval": "50ms",
        "traefik.http.routers.api-staging.rule": "Host(`staging.api.example.com`)",
        "traefik.http.routers.api-staging.service": "api-staging",
        "traefik.http.routers.api-staging.middlewares": "api-staging-retry",
        "traefik.http.routers.api-staging.priority": "10000",
        "traefik.http.routers.api-staging.entrypoints": "web",
    }


def test_redirect_names_a_published_port_other_than_443():
    spec = parse_app_config(APP).base
    labels = traefik_labels(spec, "production", https_port=18443)
    assert labels["traefik.http.middlewares.api-production-https.redirectscheme.port"] == "18443"
    assert "traefik.http.middlewares.api-production-https.redirectscheme.port" not in (
        traefik_labels(spec, "production")
    )


def test_no_domains_no_labels():
    spec = parse_app_config("name: a\nimage: a:1\nport: 80\n").base
    assert traefik_labels(spec, "production") == {}
    assert urls(spec) == []


def test_rules_with_several_domains_and_prefixes():
    one = parse_app_config("name: a\nimage: a:1\nport: 80\ndomains: [a.test]\npath_prefix: /api\n")
    assert rule(one.base.domains, one.base.path_prefix) == "Host(`a.test`) && PathPrefix(`/api`)"
    many = parse_app_config(
        "name: a\nimage: a:1\nport: 80\ndomains: [a.test, b.test]\npath_prefix: [/api, /v2]\n"
    )
    assert rule(many.base.domains, many.base.path_prefix) == (
        "(Host(`a.test`) || Host(`b.test`)) && (PathPrefix(`/api`) || PathPrefix(`/v2`))"
    )


def test_urls():
    spec = parse_app_config(
        "name: a\nimage: a:1\nport: 80\ndomains: [a.test, b.test]\npath_prefix: /api\n"
    ).base
    assert urls(spec) == ["https://a.test/api", "https://b.test/api"]
    plain = parse_app_config(APP).for_env("staging")
    assert urls(plain) == ["http://staging.api.example.com/"]
    assert urls(plain, http_port=18080) == ["http://staging.api.example.com:18080/"]


def test_domains_are_lowercased_hostnames():
    spec = parse_app_config("name: a\nimage: a:1\nport: 80\ndomains: [API.Example.COM.]\n")
    assert spec.base.domains == ["api.example.com"]
    assert spec.base.https is True
    assert spec.base.path_prefix == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "domains: ['*.*.example.com']",
            "app.yml: domains[0]: '*.*.example.com': a wildcard is one leading '*.', such as "
            "*.example.com",
        ),
        (
            "domains: [ok.test, 'bad host']",
            "app.yml: domains[1]: 'bad host' is not a hostname such as api.example.com",
        ),
        ("domains: ['a`) || Host(`b']", "app.yml: domains[0]: 'a`) || Host(`b' is not a hostname"),
        ("domains: [a.test, A.test]", "app.yml: domains: 'a.test' is listed twice"),
        ("domains: a.test", "app.yml: domains: expected a list, got 'a.test'"),
        (
            "domains: [a.test]\npath_prefix: api",
            "app.yml: path_prefix[0]: expected a URL path starting with '/', such as /api, "
            "got 'api'",
        ),
        ("https: maybe", "app.yml: https: expected true or false, got 'maybe'"),
        (
            "environments: {staging: {domains: [x..test]}}",
            "app.yml: environments.staging.domains[0]: 'x..test' is not a hostname",
        ),
    ],
)
def test_routing_errors_name_the_field(text, message):
    with pytest.raises(AppSpecError) as info:
        parse_app_config(f"name: a\nimage: a:1\nport: 80\n{text}\n")
    assert str(info.value).startswith(message)


def test_domains_need_a_port():
    with pytest.raises(AppSpecError) as info:
        parse_app_config("name: a\nimage: a:1\ndomains: [a.test]\n")
    assert str(info.value) == (
        "app.yml: domains: set 'port' too: the port the app listens on, where requests go"
    )


def test_routed_hosts_reads_every_router_rule_of_a_services_labels_once():
    labels = {
        "traefik.http.routers.shop-production.rule": "Host(`shop.example.com`) || "
        "Host(`WWW.example.com`)",
        "traefik.http.routers.shop-production-wildcard.rule": host_rule("*.example.com")
        + " && !Host(`api.example.com`)",
        "traefik.http.routers.shop-production.entrypoints": "websecure",
        "traefik.http.routers.other.rule": "Host(`shop.example.com`)",
        "traefik.http.routers.a.b.rule": "Host(`not.a.router.example.com`)",
        "traefik.http.services.shop-production.loadbalancer.server.port": "8000",
    }
    assert routed_hosts(labels) == ["shop.example.com", "www.example.com", "*.example.com"]
    assert routed_hosts({}) == []
