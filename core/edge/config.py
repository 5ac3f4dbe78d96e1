"""shipbot.yml's ``edge:`` section: how the Traefik in front of the swarm runs.

```yaml
edge:
  image: traefik:v3          # the proxy's image (tests build one locally)
  service: shipbot-edge      # its Swarm service name
  http_port: 80              # published in host mode on every node that runs it
  https_port: 443
  address: 127.0.0.1         # where shipbot reaches those ports to probe an app's domain
  refresh_seconds: 1         # how often Traefik polls Swarm (its default, 15, drops requests)
  acme: {email: ops@example.com}   # certificates: core/edge/acme.py has every key
```
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from core.edge.acme import AcmeConfig
from core.names import APP_NAME_RE


class EdgeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    image: str = Field(default="traefik:v3", min_length=1)
    service: str = Field(default="shipbot-edge", pattern=APP_NAME_RE.pattern)
    http_port: int = Field(default=80, ge=1, le=65535)
    https_port: int = Field(default=443, ge=1, le=65535)
    address: str = Field(default="127.0.0.1", min_length=1)
    refresh_seconds: int = Field(default=1, ge=1, le=60)
    acme: AcmeConfig = Field(default_factory=AcmeConfig)
