"""Credentials in git URLs: split off before a URL is stored, masked in any text shown.

A token never stays in a stored URL or an argv: ``split_credentials`` takes it out (it is
kept encrypted and reaches git through its environment, core/apps/sources.py), ``redact`` masks
the password of every URL in a text, and ``scrub`` masks one credential in each of the
spellings git may print it in.
"""

from __future__ import annotations

import base64
import re
from urllib.parse import unquote, urlsplit, urlunsplit

from core.errors import SourceError

_URL_USERINFO_RE = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^\s/?#]*)@")


def split_credentials(url: str) -> tuple[str, str | None]:
    """``url`` without its userinfo secret, and the secret removed (``user:TOKEN`` or ``TOKEN``)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc or not parts.scheme or "://" not in url:
        return url, None  # a path or scp-like ``git@host:repo``: no password syntax there
    userinfo, _, host = parts.netloc.rpartition("@")
    if parts.scheme.lower() in ("http", "https"):
        return urlunsplit(parts._replace(netloc=host)), userinfo
    if ":" in userinfo:
        raise SourceError(
            f"{redact(url)}: git over {parts.scheme}:// cannot take a password in the URL; "
            "use an SSH key, or an https:// URL with a token"
        )
    return url, None


def redact(text: str) -> str:
    """``text`` with the password (or bare token) of every URL in it masked."""

    def mask(match: re.Match[str]) -> str:
        scheme, userinfo = match["scheme"], match["userinfo"]
        if ":" in userinfo:
            return f"{scheme}{userinfo.partition(':')[0]}:***@"
        if scheme.lower() in ("http://", "https://"):
            return f"{scheme}***@"
        return match[0]  # ssh://git@host: a user name, not a secret

    return _URL_USERINFO_RE.sub(mask, text)


def basic_auth(credential: str) -> str:
    user, _, password = credential.partition(":")
    # A token-only credential is sent as the user name with an empty password.
    raw = f"{unquote(user)}:{unquote(password)}".encode()
    return base64.b64encode(raw).decode("ascii")


def scrub(text: str, credential: str | None) -> str:
    """``text`` with ``credential`` in each of its spellings, and URL passwords, masked."""
    if credential:
        secret = credential.partition(":")[2] or credential
        pieces = {credential, unquote(credential), basic_auth(credential), secret, unquote(secret)}
        # Very short pieces would mask unrelated text and are no secret worth the name.
        for piece in sorted((p for p in pieces if len(p) >= 4), key=len, reverse=True):
            text = text.replace(piece, "***")
    return redact(text)
