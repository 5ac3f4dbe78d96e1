"""Pure: ``ssh://user@host[:port]`` as a server's address, parsed and checked."""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from dataclasses import dataclass

from core.names import LOGIN_RE
from core.servers.errors import ServerError

DEFAULT_PORT = 22
# a login name as adduser accepts it, and a DNS name's characters
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
_HOST_RE = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")
FORM = "ssh://user@host[:port], e.g. ssh://root@203.0.113.7 or ssh://deploy@eu-1.example.com:2222"


@dataclass(frozen=True)
class ServerURL:
    user: str
    host: str
    port: int = DEFAULT_PORT

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = "" if self.port == DEFAULT_PORT else f":{self.port}"
        return f"ssh://{self.user}@{host}{port}"

    @property
    def docker_url(self) -> str:
        """What the docker SDK's ``ssh://`` transport is given (the port always said)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ssh://{self.user}@{host}:{self.port}"


def parse_url(text: str) -> ServerURL:
    """``ssh://user@host[:port]``; anything else (a path, a password, a query) is refused."""
    bad = f"{text!r} is not a server address: write {FORM}"
    if not text.startswith("ssh://"):
        raise ServerError(bad)
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ServerError(f"{bad} ({exc})") from exc
    if parts.password is not None:
        raise ServerError(f"{text!r}: no password in the address; shipbot logs in with a key")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ServerError(bad)
    user, host = parts.username, parts.hostname
    if not user or not LOGIN_RE.match(user):
        raise ServerError(f"{bad} (the user is missing or not a login name)")
    if not host or not _valid_host(host):
        raise ServerError(f"{bad} (the host is missing or not a host name or IP address)")
    if port is not None and not 1 <= port <= 65535:
        raise ServerError(f"{bad} (port {port} is out of range)")
    return ServerURL(user, host, port or DEFAULT_PORT)


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return bool(_HOST_RE.match(host)) and not host.replace(".", "").isdigit()
    return True
