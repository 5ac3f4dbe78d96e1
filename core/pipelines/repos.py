"""Repository addresses compared as one key: a forge names a repository by its HTTPS, SSH
and git URLs, and an app was registered with one of them (or a local path)."""

from __future__ import annotations

import posixpath
import re
from urllib.parse import urlsplit

# user@host:owner/repo (scp-like SSH, no scheme)
_SCP_RE = re.compile(r"^(?:[^@/\s]+@)?(?P<host>[^:/\s]+):(?P<path>[^/\s].*)$")


def repo_key(url: str) -> str:
    """``host/owner/repo`` in lower case, without scheme, user, port or ``.git``; a local
    path as ``file:/its/normal/path``."""
    text = url.strip()
    if text.startswith("file://"):
        text = text.removeprefix("file://")
    if text.startswith("/"):
        return "file:" + posixpath.normpath(text).removesuffix("/").removesuffix(".git")
    if "://" in text:
        parts = urlsplit(text)
        host, path = (parts.hostname or ""), parts.path
    else:
        match = _SCP_RE.match(text)
        if match is None:
            return text.lower()
        host, path = match["host"], match["path"]
    path = path.strip("/").removesuffix(".git").removesuffix("/")
    return f"{host.lower()}/{path.lower()}"


def same_repository(registered: str, urls: tuple[str, ...]) -> bool:
    key = repo_key(registered)
    return any(repo_key(url) == key for url in urls if url)
