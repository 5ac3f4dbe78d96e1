"""app.yml keys that place an app's tasks and hand them Swarm secrets (shipbot's own
app.yml uses both: a manager node, and chat tokens as Swarm secrets).

A Swarm secret is mounted only when its name starts with the app's own name and a dash
(``api-…`` for app ``api``): app.yml is written by whoever can push to the app, and must not
reach secrets made for another app or for the edge. ``core/deploy/spec.py`` turns these into
the service spec; the ids come from the engine at deploy time.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

CONSTRAINT_RE = re.compile(
    r"^(?:node\.(?:id|hostname|role|platform\.os|platform\.arch|labels\.[A-Za-z0-9_.-]+)"
    r"|engine\.labels\.[A-Za-z0-9_.-]+)\s*(?:==|!=)\s*[A-Za-z0-9_.:-]+$"
)
SECRET_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
FILE_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
MOUNT_FOLDER = "/run/secrets"


def _constraint(value: str) -> str:
    if not CONSTRAINT_RE.match(value):
        raise ValueError(
            f"{value!r} is not a placement constraint such as 'node.role == manager' or "
            "'node.labels.disk == ssd'"
        )
    return value


Constraint = Annotated[str, AfterValidator(_constraint)]


class SwarmSecret(BaseModel):
    """``name``: a Swarm secret made beforehand (``docker secret create``); ``file``: its
    name under /run/secrets in the task (default: the secret's name)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=SECRET_NAME_RE.pattern)
    file: str | None = Field(default=None, pattern=FILE_NAME_RE.pattern)

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


def secrets_of_others(
    app: str, secrets: list[SwarmSecret], apps: list[str]
) -> list[tuple[str, str]]:
    """Secrets whose names read as a longer-named app's (``api-v2-token`` for app ``api`` is
    app ``api-v2``'s ``token``): (secret, that app)."""
    longer = [a for a in apps if a != app and a.startswith(app + "-")]
    return [(s.name, a) for s in secrets for a in longer if s.name.startswith(a + "-")]


def secret_references(secrets: list[SwarmSecret], ids: dict[str, str]) -> list[dict[str, Any]]:
    """The ContainerSpec ``Secrets``: read-only files for the task's user (mode 0400 would
    hide them from a non-root process, so 0444 inside a task only it runs in)."""
    return [
        {
            "SecretID": ids[secret.name],
            "SecretName": secret.name,
            "File": {"Name": secret.target, "UID": "0", "GID": "0", "Mode": 0o444},
        }
        for secret in secrets
    ]
