"""The shapes app.yml's routing keys must have: hostnames and path prefixes.

Both end up inside Traefik rules between backticks, so these checks are also what keeps a
rule from being written from app.yml.
"""

from __future__ import annotations

import re
from typing import Any

# One DNS label: letters, digits and inner hyphens, at most 63 characters.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
HOSTNAME_RE = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
PATH_PREFIX_RE = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$")


def hostname(value: Any) -> str:
    """A domain an app answers on, lowercased; wildcards are refused (HTTP-01 cannot prove
    them)."""
    if not isinstance(value, str):
        raise ValueError(f"expected a hostname such as api.example.com, got {value!r}")
    name = value.strip().lower().removesuffix(".")
    if name.startswith("*."):
        raise ValueError(f"{value!r}: wildcard domains need DNS-01 certificates")
    if len(name) > 253 or not HOSTNAME_RE.match(name):
        raise ValueError(f"{value!r} is not a hostname such as api.example.com")
    return name


def path_prefix(value: Any) -> str:
    if not isinstance(value, str) or not PATH_PREFIX_RE.match(value):
        raise ValueError(f"expected a URL path starting with '/', such as /api, got {value!r}")
    return value


def one_or_many(value: Any) -> Any:
    """``path_prefix: /api`` is short for ``path_prefix: [/api]``."""
    return [value] if isinstance(value, str) else value


def distinct(values: list[str]) -> list[str]:
    seen = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{value!r} is listed twice")
        seen.add(value)
    return values
