"""``edge:`` and ``dns:``: the Traefik proxy, its certificates and Cloudflare records
(core/edge/ builds from these)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.names import APP_NAME_RE, hostname, public_addresses

LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
AUTO_TTL = 1  # Cloudflare's "automatic"


class AcmeConfig(BaseModel):
    """``edge.acme``: how Traefik obtains certificates (keys documented in core/edge/acme.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$")
    ca_server: str = Field(default=LETS_ENCRYPT, pattern=r"^https://\S+$")
    ca_certificates: str | None = Field(default=None, min_length=1)
    volume: str = Field(default="shipbot-edge-acme", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    certificates_duration: int = Field(default=2160, ge=1)
    dns_token_secret: str | None = Field(default=None, min_length=1)
    dns_resolvers: list[str] = Field(default_factory=list)
    watch_seconds: float = Field(default=60.0, gt=0)
    alert_days: int = Field(default=14, ge=1)


class DnsConfig(BaseModel):
    """``dns:``: Cloudflare records for app domains (keys documented in core/edge/dns.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: Literal["cloudflare"] = "cloudflare"
    zone: str
    addresses: list[str] = Field(default_factory=list)
    target: str | None = None
    # each server's public addresses, by server name, for the apps that run there (those
    # recorded from chat, `server address S A…`, come first)
    servers: dict[str, list[str]] = Field(default_factory=dict)
    proxied: bool = False
    ttl: int = AUTO_TTL
    token_env: str = Field(default="CLOUDFLARE_API_TOKEN", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    api_url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    timeout_seconds: float = Field(default=15.0, gt=0, le=120)

    @field_validator("zone", "target")
    @classmethod
    def _hostname(cls, value: str | None) -> str | None:
        return None if value is None else hostname(value)

    @field_validator("addresses")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        return public_addresses(value)

    @field_validator("servers")
    @classmethod
    def _servers(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        out = {}
        for server, addresses in value.items():
            if not APP_NAME_RE.match(server):
                raise ValueError(f"{server!r} is not a server name")
            if not addresses:
                raise ValueError(f"{server}: list at least one address")
            try:
                out[server] = public_addresses(addresses)
            except ValueError as exc:
                raise ValueError(f"{server}: {exc}") from exc
        return out

    @field_validator("ttl")
    @classmethod
    def _ttl(cls, value: int) -> int:
        if value != AUTO_TTL and not 60 <= value <= 86400:
            raise ValueError(f"must be 1 (automatic) or between 60 and 86400 seconds, got {value}")
        return value

    @model_validator(mode="after")
    def _one_target(self) -> DnsConfig:
        if self.addresses and self.target is not None:
            raise ValueError("set either 'addresses' (A/AAAA) or 'target' (a CNAME), not both")
        return self

    @property
    def own_target(self) -> bool:
        """Whether the control plane's own server has records to point at."""
        return bool(self.addresses) or self.target is not None


class EdgeConfig(BaseModel):
    """``edge:``: how the Traefik in front of the swarm runs.

    ```yaml
    edge:
      image: traefik:v3          # the proxy's image (tests build one locally)
      service: shipbot-edge      # its Swarm service name
      http_port: 80              # published in host mode on every node that runs it
      https_port: 443
      address: 127.0.0.1         # where shipbot reaches those ports to probe an app's domain
      refresh_seconds: 1         # how often Traefik polls Swarm (its default, 15, drops requests)
      acme: {email: ops@example.com}   # certificates: core/edge/acme.py documents every key
    ```
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    image: str = Field(default="traefik:v3", min_length=1)
    service: str = Field(default="shipbot-edge", pattern=APP_NAME_RE.pattern)
    http_port: int = Field(default=80, ge=1, le=65535)
    https_port: int = Field(default=443, ge=1, le=65535)
    address: str = Field(default="127.0.0.1", min_length=1)
    refresh_seconds: int = Field(default=1, ge=1, le=60)
    acme: AcmeConfig = Field(default_factory=AcmeConfig)
