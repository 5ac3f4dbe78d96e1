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
from docker.errors import DockerException
from docker.utils import parse_bytes
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from core.durations import parse_duration_ns
from core.errors import AppSpecError
from core.names import APP_NAME_RE, ENV_NAME_RE, ROLE_NAMES, USER_RE, domain, path_prefix
from core.names import KEY_RE as ENV_KEY_RE

# A named volume (``data:/var/lib/x``) or a host path bind mount (``/var/run/docker.sock:...``).
VOLUME_RE = re.compile(
    r"^(?P<source>[a-zA-Z0-9][a-zA-Z0-9_.-]*|/[^:]*):(?P<target>/[^:]*)(?::(?P<mode>ro|rw))?$"
)

APP_FILE = "app.yml"
DEFAULT_ENV = "production"


def _memory_bytes(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return parse_bytes(str(value).strip().lower().removesuffix("ib").removesuffix("b") or "x")
    except DockerException as exc:
        raise ValueError(f"expected a size such as 256M or 1G, got {value!r}") from exc


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise ValueError(f"expected a string or number, got {type(value).__name__}")


def _one_or_many(value: Any) -> Any:
    """``path_prefix: /api`` is short for ``path_prefix: [/api]``."""
    return [value] if isinstance(value, str) else value


def _distinct(values: list[str]) -> list[str]:
    seen = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{value!r} is listed twice")
        seen.add(value)
    return values


Duration = Annotated[int, BeforeValidator(parse_duration_ns)]
MemoryBytes = Annotated[int, BeforeValidator(_memory_bytes), Field(gt=0)]
EnvValue = Annotated[str, BeforeValidator(_env_value)]
Domain = Annotated[str, BeforeValidator(domain)]
PathPrefix = Annotated[str, BeforeValidator(path_prefix)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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


class Approval(_Strict):
    """Who must approve a deploy or rollback to an environment before it runs."""

    required: int = Field(default=1, ge=1, le=5)
    approvers: list[str] = Field(default_factory=lambda: ["deployer", "admin"], min_length=1)
    expires: Duration = parse_duration_ns("30m")

    @field_validator("approvers")
    @classmethod
    def _roles_or_users(cls, value: list[str]) -> list[str]:
        for item in value:
            if item not in ROLE_NAMES and not USER_RE.match(item):
                raise ValueError(
                    f"{item!r} is neither a role ({', '.join(ROLE_NAMES)}) nor a platform:id"
                )
        return value


_NODE_FIELD = (
    r"(?:node\.(?:id|hostname|role|platform\.os|platform\.arch)"
    r"|(?:node|engine)\.labels\.[A-Za-z0-9_.-]{1,64})"
)
CONSTRAINT_RE = re.compile(rf"^{_NODE_FIELD}\s*(?:==|!=)\s*[A-Za-z0-9_.:-]{{1,128}}$")
SPREAD_RE = re.compile(rf"^{_NODE_FIELD}$")


class Placement(_Strict):
    """Where an environment's tasks may run in its server's swarm (Swarm's own placement):
    ``constraints`` such as ``node.labels.zone==eu`` or ``node.role!=manager``; ``spread``
    replicas evenly over the values of a node attribute (``node.id``: over nodes);
    ``max_per_node`` caps the replicas one node runs (with start-first rollouts a node
    must have room for the new task beside the old one, so leave spare nodes or use
    ``rollout.order: stop-first``)."""

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
    environments: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # the server whose swarm runs this environment (`server list`); shipbot's own by default
    server: str | None = Field(default=None, pattern=APP_NAME_RE.pattern)
    placement: Placement = Field(default_factory=Placement)

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

    @field_validator("env")
    @classmethod
    def _env_keys(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not ENV_KEY_RE.match(key):
                raise ValueError(f"{key!r} is not a valid variable name")
        return value

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

    @field_validator("domains", "path_prefix", "databases")
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
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise AppSpecError(f"no {APP_FILE} in {folder}: add one (see examples/hello)") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise AppSpecError(f"cannot read {path}: {exc}") from exc
    return parse_app_config(text, source=str(path))


def parse_app_config(text: str, source: str = APP_FILE) -> AppConfig:
    try:
        raw = yaml.safe_load(text)
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
        problems = [_describe(err, env, override or {}, base or {}) for err in exc.errors()]
        raise AppSpecError(f"{source}: " + "; ".join(problems)) from exc


def _describe(err: Any, env: str | None, override: dict[str, Any], base: dict[str, Any]) -> str:
    loc = [part for part in err["loc"] if not _is_union_tag(part)]
    path = _path(loc)
    reach = _depth(loc, override)
    if env is not None and reach and reach >= _depth(loc, base):
        path = f"environments.{env}.{path}" if path else f"environments.{env}"
    return f"{path or '(top level)'}: {_message(err)}"


def _is_union_tag(part: Any) -> bool:
    # pydantic puts the failing union member (e.g. 'list[str]') into the location
    return isinstance(part, str) and ("[" in part or part in {"str", "int", "function-after"})


def _path(loc: list[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _depth(loc: list[Any], tree: Any) -> int:
    """How far along ``loc`` a tree reaches; the override is at fault when it reaches as far
    as the base (its value replaced the base's) or further."""
    depth = 0
    for part in loc:
        in_map = isinstance(tree, dict) and part in tree
        in_list = isinstance(tree, list) and isinstance(part, int) and part < len(tree)
        if not (in_map or in_list):
            break
        tree = tree[part]
        depth += 1
    return depth


def _message(err: Any) -> str:
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required"
    if kind in {"greater_than_equal", "greater_than", "less_than_equal", "less_than"}:
        op = {
            "greater_than_equal": "≥",
            "greater_than": ">",
            "less_than_equal": "≤",
            "less_than": "<",
        }[kind]
        bound = next(iter(ctx.values()))
        return f"must be {op} {bound}, got {value!r}"
    if kind in {"int_type", "int_parsing", "int_from_float"}:
        return f"expected a whole number, got {value!r}"
    if kind in {"float_type", "float_parsing"}:
        return f"expected a number, got {value!r}"
    if kind in {"bool_type", "bool_parsing"}:
        return f"expected true or false, got {value!r}"
    if kind in {"string_type"}:
        return f"expected a string, got {value!r}"
    if kind in {"list_type"}:
        return f"expected a list, got {value!r}"
    if kind in {"dict_type", "model_type", "model_attributes_type"}:
        return f"expected a mapping, got {value!r}"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    return err["msg"][0].lower() + err["msg"][1:]
