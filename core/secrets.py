"""Secrets at rest: Fernet-encrypted in the store, masked in anything shown in a channel."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from core.errors import CoreError

KEY_FILE = "secret.key"
MASK = "••••••"
MIN_SECRET_LENGTH = 4  # shorter values can't be masked without mangling ordinary text


class SecretError(CoreError):
    """A secret cannot be stored or read back."""


class Vault:
    """Encrypts and decrypts with one Fernet key: from config, or generated once (mode 0600)."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    @classmethod
    def open(cls, home: Path, key: str | None = None) -> Vault:
        if key:
            return cls(key.encode())
        path = home / KEY_FILE
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(Fernet.generate_key())
        return cls(path.read_bytes().strip())

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise SecretError(
                "a stored secret cannot be decrypted with this key: was secret.key replaced?"
            ) from exc


class Masker:
    """Replaces every known secret value in a text with a mask."""

    def __init__(self, values: Iterable[str]) -> None:
        usable = sorted({v for v in values if len(v) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, usable))) if usable else None

    def __call__(self, text: str) -> str:
        return self._pattern.sub(MASK, text) if self._pattern else text
