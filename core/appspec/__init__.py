"""``app.yml``: parse, validate and resolve per-environment overrides.

Errors name the exact path of the field at fault, as Kamal's configuration does:
``environments.production.replicas: must be ≥ 1, got 0``.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BeforeValidator,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from core.appspec.errors import describe
from core.appspec.jobs import ReleaseCommand, release_shorthand
from core.appspec.swarm import (
    Placement,
    SwarmSecret,
    constraints_only,
    foreign_secrets,
    shared_files,
)
from core.bounded import MAX_ERRORS, check_size, load_yaml
from core.config.parts import DEFAULT_ENV, Approval, Duration, MemoryBytes
from core.config.parts import Strict as _Strict
from core.durations import parse_duration_ns
from core.errors import AppSpecError
from core.names import APP_NAME_RE, ENV_NAME_RE, domain, path_prefix
from core.names import KEY_RE as ENV_KEY_RE

# A named volume (``data:/var/lib/x``) or a host path bind mount (``/var/run/docker.sock:...``).
VOLUME_RE = re.compile(
    r"^(?P<source>[a-zA-Z0-9][a-zA-Z0-9_.-]*|/[^:]*):(?P<target>/[^:]*)(?::(?P<mode>ro|rw))?$"
)

APP_FILE = "app.yml"


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise ValueError(f"expected a string or number, got {type(value).__name__}")


def _one_or_many(value: Any) -> Any:
    """``path_prefix: /api`` is short for ``path_prefix: [/api]``."""
    return [value] if isinstance(value, str) else value


def _valid_env_keys(value: dict[str, str]) -> dict[str, str]:
    for key in value:
        if not ENV_KEY_RE.match(key):
            raise ValueError(f"{key!r} is not a valid variable name")
    return value


def _distinct(values: list[str]) -> list[str]:
    seen = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{value!r} is listed twice")
        seen.add(value)
    return values


EnvValue = Annotated[str, BeforeValidator(_env_value)]
Domain = Annotated[str, BeforeValidator(domain)]
PathPrefix = Annotated[str, BeforeValidator(path_prefix)]


class BuildSpec(_Strict):
    context: str = "."
    dockerfile: str = "Dockerfile"
    target: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    args: dict[str, EnvValue] = Field(default_factory=dict)


class Rollout(_Strict):
    """How Swarm replaces tasks: ``parallelism`` at a time (0: all of them in one batch, so a
    deploy takes about as long whatever the count), new ones first by default."""

    parallelism: int = Field(default=0, ge=0, le=100)
    order: Literal["start-first", "stop-first"] = "start-first"


class Healthcheck(_Strict):
    cmd: list[str] | str
    interval: Duration = parse_duration_ns("5s")
    timeout: Duration = parse_duration_ns("3s")
    retries: int = Field(default=3, ge=1)
    start_period: Duration = 0

    @field_validator("cmd", mode="before")
    @classmethod
    def _argv_or_shell(cls, value: Any) -> Any:
        argv = isinstance(value, list) and all(isinstance(part, str) for part in value)
        if not (argv or isinstance(value, str)) or not value:
            raise ValueError(f"expected a list of strings (argv) or a shell string, got {value!r}")
        return value

    def test(self) -> list[str]:
        """The Engine API form: ``["CMD", ...]`` for argv, ``["CMD-SHELL", ...]`` for a string."""
        if isinstance(self.cmd, str):
            return ["CMD-SHELL", self.cmd]
        return ["CMD", *self.cmd]


class Resources(_Strict):
    cpus: float | None = Field(default=None, gt=0)
    memory: MemoryBytes | None = None


class DeployOnPush(_Strict):
    """``deploy_on_push: {branch: main, env: staging}``: a signed push to ``branch`` of the
    app's registered repository deploys that branch to ``env`` (core/pipelines)."""

    branch: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")
    env: str = Field(default=DEFAULT_ENV, pattern=ENV_NAME_RE.pattern)


def _preview_domain(value: Any) -> str:
    if not isinstance(value, str) or value.count("{number}") != 1:
        raise ValueError(
            f"expected a host name holding '{{number}}' once, such as "
            f"pr-{{number}}.preview.example.com, got {value!r}"
        )
    domain(value.replace("{number}", "1"))
    return value.strip().lower()


class Previews(_Strict):
    """``previews:``: every pull request gets environment ``pr-N`` at ``domain`` (its
    ``{number}`` filled in), with no secrets of the app (core/pipelines/preview.py)."""

    domain: Annotated[str, BeforeValidator(_preview_domain)]
    https: bool = True
    replicas: int = Field(default=1, ge=1, le=10)
    forks: bool = False  # pull requests from forks run someone else's code: off by default
    env: dict[str, EnvValue] = Field(default_factory=dict)  # plain values for previews only
    # the server previews run on (`server list`); app.yml's top-level `server:`, else the
    # control plane's own, by default. Read at the registered ref, never the pull request's
    server: str | None = Field(default=None, pattern=APP_NAME_RE.pattern)

    _env_keys = field_validator("env")(_valid_env_keys)


def _push_rules(value: Any) -> Any:
    """``deploy_on_push: {branch: main}`` is short for a list of one rule."""
    return [value] if isinstance(value, dict) else value


class AppSpec(_Strict):
    """One app in one environment, after overrides are merged."""

    name: str
    build: BuildSpec | None = None
    image: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)  # the port Traefik sends requests to
    # Routing through the edge (core/edge/labels.py): none by default, so the app is reachable
    # only inside the swarm network. ``https: false`` serves plain HTTP on port 80.
    domains: list[Domain] = Field(default_factory=list)
    path_prefix: Annotated[list[PathPrefix], BeforeValidator(_one_or_many)] = Field(
        default_factory=list
    )
    https: bool = True
    replicas: int = Field(default=1, ge=1, le=100)
    command: list[str] | None = None
    healthcheck: Healthcheck | None = None
    env: dict[str, EnvValue] = Field(default_factory=dict)
    resources: Resources = Field(default_factory=Resources)
    volumes: list[str] = Field(default_factory=list)
    stop_grace_period: Duration = parse_duration_ns("10s")
    rollout: Rollout = Field(default_factory=Rollout)
    approval: Approval | None = None
    # managed databases by name: each gives DATABASE_URL or REDIS_URL (core/data/databases.py)
    databases: list[Annotated[str, Field(pattern=APP_NAME_RE.pattern)]] = Field(
        default_factory=list
    )
    # apps this one asks to reach in the same environment; each needs an admin's
    # `link grant` (core/deploy/links.py) or the deploy is refused
    links: list[Annotated[str, Field(pattern=APP_NAME_RE.pattern)]] = Field(default_factory=list)
    environments: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # pipelines (core/pipelines): read from app.yml at the registered ref, never a branch's
    deploy_on_push: Annotated[list[DeployOnPush], BeforeValidator(_push_rules)] = Field(
        default_factory=list
    )
    previews: Previews | None = None
    # where tasks may run, and Swarm secrets they get as files (core/appspec/swarm.py)
    swarm_secrets: list[SwarmSecret] = Field(default_factory=list)
    # the server whose swarm runs this environment (`server list`); shipbot's own by default
    server: str | None = Field(default=None, pattern=APP_NAME_RE.pattern)
    placement: Annotated[Placement, BeforeValidator(constraints_only)] = Field(
        default_factory=Placement
    )
    # run once on the new image before traffic moves to it (core/deploy/release_job.py)
    release: Annotated[ReleaseCommand | None, BeforeValidator(release_shorthand)] = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not APP_NAME_RE.match(value):
            raise ValueError(
                "must start with a lowercase letter and hold only a-z, 0-9 and '-' "
                f"(at most 41 characters), got {value!r}"
            )
        return value

    @field_validator("build", mode="before")
    @classmethod
    def _build_shorthand(cls, value: Any) -> Any:
        return {"context": value} if isinstance(value, str) else value

    @field_validator("approval", mode="before")
    @classmethod
    def _approval_shorthand(cls, value: Any) -> Any:
        if value is True:
            return {}
        return None if value is False else value

    _env_keys = field_validator("env")(_valid_env_keys)

    @field_validator("volumes")
    @classmethod
    def _volumes(cls, value: list[str]) -> list[str]:
        for item in value:
            if not VOLUME_RE.match(item):
                raise ValueError(
                    f"expected 'name:/path', '/host/path:/path' (':ro' optional), got {item!r}"
                )
        return value

    @field_validator("environments")
    @classmethod
    def _environment_names(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for env in value:
            if not ENV_NAME_RE.match(env):
                raise ValueError(f"environment name {env!r} must match [a-z][a-z0-9-]{{0,20}}")
        return value

    @field_validator("domains", "path_prefix", "databases", "links")
    @classmethod
    def _distinct(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if info.field_name == "domains" and value and info.data.get("port") is None:
            raise ValueError("set 'port' too: the port the app listens on, where requests go")
        return _distinct(value)

    @model_validator(mode="after")
    def _one_source(self) -> AppSpec:
        if (self.build is None) == (self.image is None):
            raise ValueError("set exactly one of 'build' (a folder to build) or 'image'")
        return self

    @model_validator(mode="after")
    def _own_secrets(self) -> AppSpec:
        foreign = foreign_secrets(self.name, self.swarm_secrets)
        if foreign:
            raise ValueError(
                f"swarm_secrets: {foreign[0]!r} is not {self.name}'s: an app mounts only "
                f"Swarm secrets named {self.name}-…"
            )
        shared = shared_files(self.swarm_secrets)
        if shared:
            file, names = shared[0]
            raise ValueError(
                f"swarm_secrets: {' and '.join(names)} would both be the file "
                f"/run/secrets/{file}: give each its own `file`"
            )
        return self


class AppConfig:
    """A validated ``app.yml``: the base and every environment resolve without error."""

    def __init__(self, raw: dict[str, Any], source: str = APP_FILE) -> None:
        self.raw = raw
        self.source = source
        self.base = _validate(raw, source, env=None)
        self.environments = sorted(self.base.environments)
        for env in self.environments:
            self.for_env(env)

    @property
    def name(self) -> str:
        return self.base.name

    def for_env(self, env: str | None) -> AppSpec:
        """The spec of one environment; an undeclared name gets the base as it is."""
        if env is None or env not in self.base.environments:
            return self.base
        merged = deep_merge(self.raw, self.base.environments[env])
        return _validate(
            merged, self.source, env=env, override=self.base.environments[env], base=self.raw
        )


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Maps merge key by key; anything else in ``override`` replaces the base value."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_app_config(folder: Path) -> AppConfig:
    path = folder / APP_FILE
    try:
        check_size(path.stat().st_size, str(path))
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise AppSpecError(f"no {APP_FILE} in {folder}: add one (see examples/hello)") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise AppSpecError(f"cannot read {path}: {exc}") from exc
    return parse_app_config(text, source=str(path))


def parse_app_config(text: str, source: str = APP_FILE) -> AppConfig:
    try:
        raw = load_yaml(text, source)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise AppSpecError(f"{source}{where}: not valid YAML ({problem})") from exc
    if not isinstance(raw, dict):
        raise AppSpecError(f"{source}: expected a mapping of keys such as 'name' and 'build'")
    return AppConfig(raw, source)


def _validate(
    raw: dict[str, Any],
    source: str,
    env: str | None,
    override: dict[str, Any] | None = None,
    base: dict[str, Any] | None = None,
) -> AppSpec:
    if env is not None and "name" in (override or {}):
        raise AppSpecError(f"{source}: environments.{env}.name: the name cannot be overridden")
    if env is not None and "environments" in (override or {}):
        raise AppSpecError(f"{source}: environments.{env}.environments: cannot be nested")
    try:
        return AppSpec.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        problems = [describe(err, env, override or {}, base or {}) for err in errors[:MAX_ERRORS]]
        more = f"; and {len(errors) - MAX_ERRORS} more" if len(errors) > MAX_ERRORS else ""
        raise AppSpecError(f"{source}: " + "; ".join(problems) + more) from exc
