"""The outside clients the control plane talks through, each built by one factory.

The composition root (rooms/root.py) owns a ``Clients`` (``core.engine.NETWORK``, the real
ones, by default) and puts it on the ``Plane``;
operations and commands ask it for a client instead of building one in place. Fakes come in
through the same factories, as httpx's ``MockTransport`` does: pass ``transport=`` for HTTP,
``dns_transport=`` for Cloudflare's API, ``s3_factory=`` for an S3 store of your own.

Registries have no client here: shipbot asks them only through a server's Docker engine
(pull, distribution digest, ``/auth``), with the engine client ``Plane.servers`` builds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.config import DnsConfig, S3Config
from core.errors import CoreError

if TYPE_CHECKING:
    import httpx

HEARTBEAT_TIMEOUT = 10.0

S3Factory = Callable[[S3Config, Mapping[str, str] | None], Any]  # core.data.s3.S3Store


@dataclass(frozen=True)
class Clients:
    s3_factory: S3Factory | None = None  # core/engine.py's NETWORK: boto3's (core/data/s3.py)
    transport: httpx.BaseTransport | None = None  # None: the network
    dns_transport: httpx.AsyncBaseTransport | None = None  # None: Cloudflare on the network

    def s3(self, config: S3Config, environ: Mapping[str, str] | None = None) -> Any:
        """The bucket and prefix of ``config`` (credentials from ``environ``'s names)."""
        if self.s3_factory is None:
            raise CoreError("no S3 client: this control plane was built without an S3 factory")
        return self.s3_factory(config, environ)

    def http(self, timeout: float = HEARTBEAT_TIMEOUT) -> httpx.Client:
        """A blocking HTTP client (callers use ``asyncio.to_thread``); close it after use."""
        import httpx  # loads with the first HTTP call, not with every command line

        return httpx.Client(transport=self.transport, timeout=timeout, follow_redirects=True)

    def dns(self, config: DnsConfig, api_token: str) -> httpx.AsyncClient:
        """An async client of Cloudflare's API at ``dns.api_url``, speaking with ``api_token``
        alone (``trust_env=False``: no proxy or netrc from the environment); close it after
        use (core/edge/cloudflare.py's ``zone`` does)."""
        import httpx  # loads with the first DNS call, not with every command line

        return httpx.AsyncClient(
            base_url=config.api_url.rstrip("/") + "/",
            headers={"Authorization": f"Bearer {api_token}"},
            timeout=config.timeout_seconds,
            transport=self.dns_transport,
            trust_env=False,
        )

    def ping(self, url: str, timeout: float = HEARTBEAT_TIMEOUT) -> str | None:
        """GET a heartbeat URL; None when it answered 2xx, else why not (never raises)."""
        import httpx

        try:
            with self.http(timeout) as client:
                status = client.get(url).status_code
        except (httpx.HTTPError, OSError, ValueError) as exc:
            return str(exc) or type(exc).__name__
        return None if 200 <= status < 300 else f"HTTP {status}"
