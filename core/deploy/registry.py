"""Registry image references and the credentials shipbot pulls them with.

A reference from outside (``deploy api --image …``, the CI endpoint) is checked here before
any engine sees it; credentials are stored encrypted per app or per registry host and
handed to the engine only as the ``X-Registry-Auth`` of one call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from core.errors import CoreError, DeployError
from core.secrets import Vault

# docker/distribution's reference grammar, lowercase path components, optional host[:port]
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*(?::[0-9]{1,5})?)"
_NAME = rf"(?:{_HOST}/)?{_COMPONENT}(?:/{_COMPONENT})*"
REFERENCE_RE = re.compile(
    rf"^(?P<name>{_NAME})(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}))?"
    r"(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
# Docker Hub as the docker SDK names it (docker.auth's INDEX_NAME and INDEX_URL; a test holds
# them equal): constants here, so a reference is read without loading the SDK
INDEX_NAME = "docker.io"
INDEX_URL = f"https://index.{INDEX_NAME}/v1/"
# Host-wide credentials are stored under this app name: every app may pull with them.
ANY_APP = "*"
MAX_REFERENCE = 255


class RegistryError(CoreError):
    """A registry image cannot be used: a bad reference, a missing tag, refused credentials."""


@dataclass(frozen=True)
class Reference:
    name: str  # host/path, as written
    tag: str | None
    digest: str | None

    @property
    def registry(self) -> str:
        """The registry host the engine asks (``docker.io`` for Docker Hub names)."""
        from docker.auth import resolve_repository_name  # the SDK loads when first needed

        return resolve_repository_name(self.name)[0]

    def pinned(self, digest: str) -> str:
        """The reference by digest alone: what a release runs, whatever the tag does later."""
        return f"{self.name}@{digest}"

    def __str__(self) -> str:
        tag = f":{self.tag}" if self.tag else ""
        digest = f"@{self.digest}" if self.digest else ""
        return f"{self.name}{tag}{digest}"


def parse_reference(text: str) -> Reference:
    """``host[:port]/path[:tag][@sha256:…]``; an image id or anything option-like is refused,
    so a deployer can only name what a registry serves."""
    hint = (
        "name an image in a registry, by tag or by digest: "
        "registry.example.com/team/api:sha-abc or registry.example.com/team/api@sha256:…"
    )
    if len(text) > MAX_REFERENCE or text.startswith(("-", "sha256:")) or DIGEST_RE.match(text):
        raise RegistryError(f"{text[:80]!r} is not an image reference: {hint}")
    match = REFERENCE_RE.match(text)
    if match is None or re.fullmatch(r"[0-9a-f]{12,64}", text):
        raise RegistryError(f"{text[:80]!r} is not an image reference: {hint}")
    return Reference(match["name"], match["tag"], match["digest"])


def canonical(name: str) -> str:
    """A repository (no tag, no digest) as Docker resolves it: ``busybox``,
    ``library/busybox``, ``docker.io/library/busybox`` and ``index.docker.io/busybox`` are
    all ``docker.io/library/busybox``."""
    from docker.auth import resolve_repository_name  # the SDK loads when first needed
    from docker.errors import InvalidRepository

    try:
        host, path = resolve_repository_name(name)
    except InvalidRepository as exc:
        raise RegistryError(f"{name[:80]!r} is not an image repository: {exc}") from exc
    host = host.lower()
    if host == INDEX_NAME and "/" not in path:
        path = f"library/{path}"
    return f"{host}/{path}"


def is_pinned(image: str | None) -> bool:
    """A reference by digest: the engine pulls exactly that content from its registry."""
    return bool(image) and "@sha256:" in str(image)


def auth_config(username: str, password: str, registry: str) -> dict[str, str]:
    """What the docker SDK and the engine take as one registry's credentials."""
    address = INDEX_URL if registry == INDEX_NAME else registry
    return {"username": username, "password": password, "serveraddress": address}


def credentials_for(store: Any, vault: Vault, app: str, registry: str) -> dict[str, str] | None:
    """The app's own login to ``registry``, else the host-wide one, else none."""
    for owner in (app, ANY_APP):
        row = store.registry_login(owner, registry)
        if row is not None:
            return auth_config(row["username"], vault.decrypt(row["secret"]), registry)
    return None


def check_login(swarm: Any, username: str, password: str, registry: str) -> None:
    """The registry accepts this login, asked through the engine; else a ``RegistryError``
    that says what to do (a login is stored only after this)."""
    again = f"`shipbot registry login {registry} --user {username}`"
    try:
        swarm.check_login(auth_config(username, password, registry))
    except DeployError as exc:
        error = str(exc)
        low = error.lower()
        if any(w in low for w in ("unauthorized", "incorrect", "denied", "401")):
            raise RegistryError(
                f"the registry {registry} refused the login of {username}: check the user "
                f"name and the password (or token), then run {again} again; nothing was stored"
            ) from exc
        if any(w in low for w in ("no answer within", "timeout", "timed out", "deadline")):
            raise RegistryError(
                f"the registry {registry} did not answer shipbot's login check in time: check "
                f"that {registry} is up and that the Docker engine reaches it, then run "
                f"{again} again; nothing was stored"
            ) from exc
        raise RegistryError(
            f"cannot check the login at the registry {registry}: {error}; nothing was stored"
        ) from exc


def explain(reference: str, registry: str, error: str, with_login: bool) -> RegistryError:
    """The engine's answer about a registry, as something a person can act on."""
    low = error.lower()
    auth_words = ("unauthorized", "authentication required", "denied", "401", "basic auth")
    if any(w in low for w in auth_words):
        if with_login:
            return RegistryError(
                f"the registry {registry} refused shipbot's credentials for {reference}: "
                f"check them (`shipbot registry login {registry} --user … [--app APP]`); "
                "nothing was changed"
            )
        return RegistryError(
            f"the registry {registry} wants credentials for {reference} and shipbot has none: "
            f"an admin runs `shipbot registry login {registry} --user … [--app APP]`; "
            "nothing was changed"
        )
    if any(w in low for w in ("manifest unknown", "not found", "404", "no such")):
        return RegistryError(
            f"{reference} is not in the registry {registry}: check the tag or digest CI "
            "pushed; nothing was changed"
        )
    return RegistryError(
        f"cannot read {reference} from the registry {registry}: {error}; nothing was changed"
    )
