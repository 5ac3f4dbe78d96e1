"""Secrets at rest: Fernet-encrypted in the store, masked in anything shown in a channel."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from core.errors import CoreError
from core.spec_parts import DEFAULT_ENV

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

KEY_FILE = "secret.key"
MASK = "••••••"
# Shorter values can't be masked without mangling ordinary text, and a masker that hides
# short values tells whoever probes it what they are.
MIN_SECRET_LENGTH = 8
# user:password@ in any URL, whatever secret it is
_URL_CREDENTIALS = re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]+@")


class SecretError(CoreError):
    """A secret cannot be stored or read back."""


class Vault:
    """Encrypts and decrypts with one Fernet key: from config, or generated once (mode 0600)."""

    def __init__(self, key: bytes) -> None:
        # Fernet's own check of the key, here, so a bad key still fails at start; the
        # cryptography library itself loads with the first secret encrypted or read
        try:
            valid = len(base64.urlsafe_b64decode(key)) == 32
        except (binascii.Error, ValueError):
            valid = False
        if not valid:
            raise ValueError("Fernet key must be 32 url-safe base64-encoded bytes.")
        self._key = key
        self._mac_key = hashlib.sha256(b"shipbot digest:" + key).digest()

    @cached_property
    def _fernet(self) -> Fernet:
        from cryptography.fernet import Fernet

        return Fernet(self._key)

    @classmethod
    def open(cls, home: Path, key: str | None = None) -> Vault:
        if key:
            return cls(key.encode())
        path = home / KEY_FILE
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(base64.urlsafe_b64encode(os.urandom(32)))  # Fernet.generate_key()
        return cls(path.read_bytes().strip())

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, token: str) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise SecretError(
                "a stored secret cannot be decrypted with this key: was secret.key replaced?"
            ) from exc

    def digest(self, data: bytes, length: int = 12) -> str:
        """A short keyed digest: equal for equal data, and no help guessing secrets in it."""
        return hmac.new(self._mac_key, data, hashlib.sha256).hexdigest()[:length]


class Masker:
    """Masks the given secret values where they stand as whole values, and the password of
    any ``user:password@`` in a URL.

    Give it only the secrets of the app and environment a reply is about: masking every
    app's secrets everywhere would let a user of one app learn another's by echoing
    candidates and watching which get masked.
    """

    def __init__(self, values: Iterable[str]) -> None:
        usable = sorted({v for v in values if len(v) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
        alternatives = "|".join(map(re.escape, usable))
        self._pattern = (
            re.compile(rf"(?<![A-Za-z0-9_])(?:{alternatives})(?![A-Za-z0-9_])") if usable else None
        )

    def __call__(self, text: str) -> str:
        text = _URL_CREDENTIALS.sub(MASK + "@", text)
        return self._pattern.sub(MASK, text) if self._pattern else text


class _Variables(Protocol):
    def variables(self, app: str, env: str) -> list[dict[str, Any]]: ...


def secret_values(store: _Variables, vault: Vault, app: str | None, env: str | None) -> list[str]:
    """The secret values to mask in what is said about one app and environment, decrypted:
    the one set replies, the guard, alerts and release jobs mask (an environment of None is
    the default one).

    Only values its deployers can read anyway (through `run`): a registry login, or any
    secret of another app or environment, in this set would let whoever echoes a guess tell
    from the masking whether it was right.
    """
    if app is None:
        return []
    rows = store.variables(app, env or DEFAULT_ENV)
    return [vault.decrypt(row["value"]) for row in rows if row["secret"]]
