"""Host keys, trusted on first use and pinned afterwards.

A ``Pin`` is a paramiko missing-host-key policy. The SSH clients it guards start with
no known hosts at all (never the user's ``~/.ssh``), so paramiko asks it about every key:
with nothing recorded it remembers what was presented (the caller stores it only once
everything else succeeded); with a record it accepts that exact key and refuses any other.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

import paramiko

from core.servers.errors import HostKeyChanged


@dataclass(frozen=True)
class HostKey:
    kind: str  # ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa
    blob: str  # base64 of the public key, as in known_hosts

    @property
    def fingerprint(self) -> str:
        """As ``ssh-keygen -lf`` prints it: SHA256 of the key, base64 without padding."""
        digest = hashlib.sha256(base64.b64decode(self.blob)).digest()
        return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")

    @classmethod
    def of(cls, key: paramiko.PKey) -> HostKey:
        return cls(key.get_name(), key.get_base64())

    def line(self, host: str, port: int) -> str:
        """Its known_hosts line (for an admin to compare or copy)."""
        where = host if port == 22 else f"[{host}]:{port}"
        return f"{where} {self.kind} {self.blob}"


def changed_message(server: str, recorded: HostKey, presented: HostKey) -> str:
    return (
        f"the host key of server {server} changed: shipbot recorded {recorded.fingerprint} "
        f"({recorded.kind}) and the host now presents {presented.fingerprint} "
        f"({presented.kind}). Nothing was done. If the host was rebuilt on purpose, check the "
        f"new fingerprint on the host (`ssh-keygen -lf /etc/ssh/ssh_host_{_file(presented)}"
        f"_key.pub`) and accept it with `server trust {server} {presented.fingerprint}`"
    )


def _file(key: HostKey) -> str:
    return {"ssh-ed25519": "ed25519", "ssh-rsa": "rsa"}.get(key.kind, "ecdsa")


class Pin(paramiko.MissingHostKeyPolicy):
    """Accepts the recorded key only; with none recorded, accepts and remembers the first."""

    def __init__(self, server: str, recorded: HostKey | None) -> None:
        self.server = server
        self.recorded = recorded
        self.presented: HostKey | None = None

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey):
        presented = HostKey.of(key)
        self.presented = presented
        if self.recorded is not None and presented != self.recorded:
            raise HostKeyChanged(changed_message(self.server, self.recorded, presented))


def disabled_host_keys(recorded: HostKey | None) -> dict[str, list[str]]:
    """Offer the server only the pinned key's algorithm, so a host holding several keys
    presents the one that was recorded (nothing disabled on first use)."""
    if recorded is None:
        return {}
    family = {"ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")}.get(
        recorded.kind, (recorded.kind,)
    )
    preferred = paramiko.Transport._preferred_keys  # noqa: SLF001 (paramiko's public table)
    return {"keys": [kind for kind in preferred if kind not in family]}
