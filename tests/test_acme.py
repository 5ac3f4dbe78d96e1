"""The ACME resolvers' arguments, environment and mounts for Traefik, exactly."""

import pytest
from pydantic import ValidationError

from core.config import AcmeConfig
from core.edge.acme import acme_args, acme_env, acme_mounts, resolver_for


def test_http01_with_lets_encrypt_by_default():
    acme = AcmeConfig()
    assert acme_args(acme) == [
        "--log.level=INFO",
        "--certificatesresolvers.shipbot.acme.caserver=https://acme-v02.api.letsencrypt.org/directory",
        "--certificatesresolvers.shipbot.acme.storage=/data/acme.json",
        "--certificatesresolvers.shipbot.acme.certificatesduration=2160",
        "--certificatesresolvers.shipbot.acme.httpchallenge.entrypoint=web",
    ]
    assert acme_env(acme) == {}
    assert acme_mounts(acme) == {
        "Mounts": [{"Type": "volume", "Source": "shipbot-edge-acme", "Target": "/data"}],
        "Configs": [],
        "Secrets": [],
    }


def test_pebble_and_cloudflare_dns01_for_wildcards():
    acme = AcmeConfig(
        email="ops@acme.test",
        ca_server="https://172.18.0.1:14000/dir",
        ca_certificates="shipbot-acme-ca",
        certificates_duration=1,
        dns_token_secret="shipbot-cf-token",
        dns_resolvers=["172.18.0.1:8053"],
    )
    assert acme_args(acme) == [
        "--log.level=INFO",
        "--certificatesresolvers.shipbot.acme.caserver=https://172.18.0.1:14000/dir",
        "--certificatesresolvers.shipbot.acme.storage=/data/acme.json",
        "--certificatesresolvers.shipbot.acme.certificatesduration=1",
        "--certificatesresolvers.shipbot.acme.email=ops@acme.test",
        "--certificatesresolvers.shipbot-dns.acme.caserver=https://172.18.0.1:14000/dir",
        "--certificatesresolvers.shipbot-dns.acme.storage=/data/acme.json",
        "--certificatesresolvers.shipbot-dns.acme.certificatesduration=1",
        "--certificatesresolvers.shipbot-dns.acme.email=ops@acme.test",
        "--certificatesresolvers.shipbot.acme.httpchallenge.entrypoint=web",
        "--certificatesresolvers.shipbot-dns.acme.dnschallenge.provider=cloudflare",
        "--certificatesresolvers.shipbot-dns.acme.dnschallenge.resolvers=172.18.0.1:8053",
    ]
    assert acme_env(acme) == {
        "LEGO_CA_CERTIFICATES": "/etc/shipbot/acme-ca.pem",
        "CF_DNS_API_TOKEN_FILE": "/run/secrets/cf-dns-api-token",
    }
    mounts = acme_mounts(acme)
    assert mounts["Configs"] == [
        {
            "ConfigName": "shipbot-acme-ca",
            "File": {"Name": "/etc/shipbot/acme-ca.pem", "UID": "0", "GID": "0", "Mode": 0o444},
        }
    ]
    assert mounts["Secrets"] == [
        {
            "SecretName": "shipbot-cf-token",
            "File": {
                "Name": "/run/secrets/cf-dns-api-token",
                "UID": "0",
                "GID": "0",
                "Mode": 0o400,
            },
        }
    ]


def test_wildcards_go_to_the_dns_resolver():
    assert resolver_for("*.apps.example.com") == "shipbot-dns"
    assert resolver_for("api.example.com") == "shipbot"


def test_a_plain_http_ca_server_is_refused():
    with pytest.raises(ValidationError, match="ca_server"):
        AcmeConfig(ca_server="http://ca.example.com/dir")
