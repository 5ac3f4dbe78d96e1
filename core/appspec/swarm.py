"""app.yml keys that place an app's tasks and hand them Swarm secrets (shipbot's own
app.yml uses both: a manager node, and chat tokens as Swarm secrets).

A Swarm secret is mounted only when its name starts with the app's own name and a dash
(``api-…`` for app ``api``): app.yml is written by whoever can push to the app, and must not
reach secrets made for another app or for the edge. ``core/deploy/spec.py`` turns these into
the service spec; the ids come from the engine at deploy time.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

_NODE_FIELD = (
    r"(?:node\.(?:id|hostname|role|platform\.os|platform\.arch)"
    r"|(?:node|engine)\.labels\.[A-Za-z0-9_.-]{1,64})"
)
CONSTRAINT_RE = re.compile(rf"^{_NODE_FIELD}\s*(?:==|!=)\s*[A-Za-z0-9_.:-]{{1,128}}$")
SPREAD_RE = re.compile(rf"^{_NODE_FIELD}$")

SECRET_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
FILE_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
MOUNT_FOLDER = "/run/secrets"


class Placement(BaseModel):
    """Where an environment's tasks may run in its server's swarm (Swarm's own placement):
    ``constraints`` such as ``node.labels.zone==eu`` or ``node.role!=manager``; ``spread``
    replicas evenly over the values of a node attribute (``node.id``: over nodes);
    ``max_per_node`` caps the replicas one node runs (with start-first rollouts a node
    must have room for the new task beside the old one, so leave spare nodes or use
    ``rollout.order: stop-first``). A bare list is short for ``constraints``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    constraints: list[str] = Field(default_factory=list)
    spread: str | None = None
    max_per_node: int | None = Field(default=None, ge=1, le=100)

    @field_validator("constraints")
    @classmethod
    def _constraints(cls, value: list[str]) -> list[str]:
        for item in value:
            if not CONSTRAINT_RE.match(item):
                raise ValueError(
                    f"{item!r} is not a placement constraint: write ATTRIBUTE==VALUE or "
                    "ATTRIBUTE!=VALUE with node.id, node.hostname, node.role, "
                    "node.platform.os/arch, node.labels.NAME or engine.labels.NAME"
                )
        return value

    @field_validator("spread")
    @classmethod
    def _spread(cls, value: str | None) -> str | None:
        if value is not None and not SPREAD_RE.match(value):
            raise ValueError(
                f"{value!r} is not a node attribute to spread over: node.id, node.hostname, "
                "node.labels.NAME or engine.labels.NAME"
            )
        return value


def constraints_only(value: Any) -> Any:
    """``placement: [node.role == manager]`` is short for ``{constraints: [...]}``."""
    return {"constraints": value} if isinstance(value, list) else value


class SwarmSecret(BaseModel):
    """``name``: a Swarm secret made beforehand (``docker secret create``); ``file``: its
    name under /run/secrets in the task (default: the secret's name); ``optional``: mounted
    when it exists, left out (and the deploy says so) when it does not, so one app.yml
    serves installs that make different secrets (shipbot's own: Slack's or Discord's)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=SECRET_NAME_RE.pattern)
    file: str | None = Field(default=None, pattern=FILE_NAME_RE.pattern)
    optional: StrictBool = False

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @property
    def target(self) -> str:
        return self.file or self.name


def foreign_secrets(app: str, secrets: list[SwarmSecret]) -> list[str]:
    """Secrets outside the app's own name space, which app.yml may not mount."""
    return [s.name for s in secrets if not s.name.startswith(f"{app}-")]


def shared_files(secrets: list[SwarmSecret]) -> list[tuple[str, list[str]]]:
    """Files two or more secrets would be mounted as: (file, the secrets' names)."""
    names: dict[str, list[str]] = {}
    for secret in secrets:
        names.setdefault(secret.target, []).append(secret.name)
    return [(file, both) for file, both in names.items() if len(both) > 1]


def secrets_of_others(
    app: str, secrets: list[SwarmSecret], apps: list[str]
) -> list[tuple[str, str]]:
    """Secrets whose names read as a longer-named app's (``api-v2-token`` for app ``api`` is
    app ``api-v2``'s ``token``): (secret, that app)."""
    longer = [a for a in apps if a != app and a.startswith(app + "-")]
    return [(s.name, a) for s in secrets for a in longer if s.name.startswith(a + "-")]


def secret_references(secrets: list[SwarmSecret], ids: dict[str, str]) -> list[dict[str, Any]]:
    """The ContainerSpec ``Secrets``: read-only files for the task's user (mode 0400 would
    hide them from a non-root process, so 0444 inside a task only it runs in). An optional
    secret the engine does not have (no id) is left out; a required one must have its id."""
    return [
        {
            "SecretID": ids[secret.name],
            "SecretName": secret.name,
            "File": {"Name": secret.target, "UID": "0", "GID": "0", "Mode": 0o444},
        }
        for secret in secrets
        if secret.name in ids or not secret.optional
    ]
