"""``DOCKER_HOST`` as the server ``local`` reads it, refused when it names ``ssh://``.

The docker SDK's own ``ssh://`` transport reads ``~/.ssh`` (config, keys, agent and
known_hosts) and trusts what it finds there. Every remote engine goes through shipbot's own
SSH layer instead (core/servers: its stored key, the host key pinned in its store), which
is what ``server add`` sets up; so ``DOCKER_HOST=ssh://…`` is refused with that road named,
at start and again wherever an engine would be dialled.
"""

from __future__ import annotations

from collections.abc import Mapping

from core.errors import EngineUnavailable

SOCKET = "unix:///var/run/docker.sock"


def engine_url(environ: Mapping[str, str]) -> str:
    """Where ``local``'s engine is: ``DOCKER_HOST``, else the default socket."""
    return environ.get("DOCKER_HOST") or SOCKET


def ssh_refusal(url: str) -> str | None:
    """Why ``url`` is not dialled, and what to do instead; None for any other scheme."""
    if not url.startswith("ssh://"):
        return None
    return (
        f"cannot reach the Docker engine at {url}: shipbot does not dial DOCKER_HOST over "
        "ssh:// (docker's own SSH reads ~/.ssh); a remote engine goes through shipbot's SSH, "
        "with its stored key and the host key it pins. Unset DOCKER_HOST, set `local: false` "
        "in shipbot.yml (no engine beside shipbot), then `ssh-key create default`, put its "
        f"public line on the host, and `server add NAME {url}`"
    )


def refuse_ssh(environ: Mapping[str, str]) -> None:
    """Raise ``EngineUnavailable`` when ``DOCKER_HOST`` names an ``ssh://`` engine."""
    why = ssh_refusal(engine_url(environ))
    if why is not None:
        raise EngineUnavailable(why)
