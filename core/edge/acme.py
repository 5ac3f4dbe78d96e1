"""shipbot.yml's ``edge.acme``: how Traefik obtains certificates, and the pure builders of
the arguments, environment and mounts the proxy's service gets for it.

```yaml
edge:
  acme:
    email: ops@example.com               # the ACME account's contact (optional)
    ca_server: https://acme-v02.api.letsencrypt.org/directory
    ca_certificates: null                # a Swarm config with the PEM the CA's API is
                                         # trusted with (pebble in tests); LEGO_CA_CERTIFICATES
    volume: shipbot-edge-acme            # acme.json lives here, across proxy upgrades
    certificates_duration: 2160          # hours a certificate lives (Traefik renews at 1/3)
    dns_token_secret: null               # a Swarm secret with a Cloudflare token: enables
                                         # the DNS-01 resolver (wildcards)
    dns_resolvers: []                    # where lego checks DNS-01 propagation (host:port)
    watch_seconds: 60                    # how often `shipbot serve` checks certificates
    alert_days: 14                       # alert this long before an unrenewed expiry
```

Two resolvers: ``shipbot`` answers HTTP-01 on the ``web`` entrypoint (every plain domain);
``shipbot-dns`` answers DNS-01 through Cloudflare, the only way to a wildcard. The token
reaches Traefik as a Swarm secret (encrypted in the swarm's Raft log, never in the service
spec) through lego's ``CF_DNS_API_TOKEN_FILE``.
"""

from __future__ import annotations

from core.config import AcmeConfig
from core.edge.labels import ENTRY_HTTP, RESOLVER, RESOLVER_DNS

DATA_DIR = "/data"
CA_FILE = "/etc/shipbot/acme-ca.pem"
CF_TOKEN_PATH = "/run/secrets/cf-dns-api-token"  # noqa: S105 (a path, not a secret)


def resolver_for(domain: str) -> str:
    """Which resolver a domain's router names: wildcards need DNS-01."""
    return RESOLVER_DNS if domain.startswith("*.") else RESOLVER


def acme_args(acme: AcmeConfig) -> list[str]:
    """Traefik's command-line arguments for the resolvers."""
    # the watcher tells a failure that still stands from one followed by success by the
    # success lines, which lego logs at INFO (Traefik's default level shows only errors)
    args: list[str] = ["--log.level=INFO"]
    resolvers = [RESOLVER] + ([RESOLVER_DNS] if acme.dns_token_secret else [])
    for name in resolvers:
        prefix = f"--certificatesresolvers.{name}.acme"
        args += [
            f"{prefix}.caserver={acme.ca_server}",
            f"{prefix}.storage={DATA_DIR}/acme.json",
            f"{prefix}.certificatesduration={acme.certificates_duration}",
        ]
        if acme.email:
            args.append(f"{prefix}.email={acme.email}")
    args.append(f"--certificatesresolvers.{RESOLVER}.acme.httpchallenge.entrypoint={ENTRY_HTTP}")
    if acme.dns_token_secret:
        prefix = f"--certificatesresolvers.{RESOLVER_DNS}.acme.dnschallenge"
        args.append(f"{prefix}.provider=cloudflare")
        if acme.dns_resolvers:
            args.append(f"{prefix}.resolvers={','.join(acme.dns_resolvers)}")
    return args


def acme_env(acme: AcmeConfig) -> dict[str, str]:
    """The proxy's environment for ACME: the CA's trust anchor, the Cloudflare token file."""
    env: dict[str, str] = {}
    if acme.ca_certificates:
        env["LEGO_CA_CERTIFICATES"] = CA_FILE
    if acme.dns_token_secret:
        env["CF_DNS_API_TOKEN_FILE"] = CF_TOKEN_PATH
    return env


def acme_mounts(acme: AcmeConfig) -> dict[str, list[dict[str, object]]]:
    """What the proxy's ``TaskTemplate.ContainerSpec`` gains: the volume for acme.json, the
    CA config and the token secret (by name; the executor resolves their ids)."""
    out: dict[str, list[dict[str, object]]] = {
        "Mounts": [{"Type": "volume", "Source": acme.volume, "Target": DATA_DIR}],
        "Configs": [],
        "Secrets": [],
    }
    file = {"UID": "0", "GID": "0", "Mode": 0o444}
    if acme.ca_certificates:
        out["Configs"].append(
            {"ConfigName": acme.ca_certificates, "File": {"Name": CA_FILE, **file}}
        )
    if acme.dns_token_secret:
        out["Secrets"].append(
            {
                "SecretName": acme.dns_token_secret,
                "File": {"Name": CF_TOKEN_PATH, **file, "Mode": 0o400},
            }
        )
    return out
