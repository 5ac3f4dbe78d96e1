"""The environment variables ``shipbot`` reads, checked once, with errors that name them.

An empty variable counts as unset, so ``SLACK_APP_TOKEN=`` in an env file switches Socket
Mode off rather than failing. Read by ``load`` with the standard library and checked by a
plain pydantic model (pydantic-settings would cost every command line ~20 ms and the bot
~4 MB for the same reading).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

SECRETS_DIR = "/run/secrets"
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class SettingsError(Exception):
    """A variable has a value shipbot cannot use; the message names it, on one line."""


class CommonSettings(BaseModel):
    """What every ``shipbot`` command reads; each field from the variable its alias names."""

    model_config = ConfigDict(extra="ignore", validate_default=True)

    log_level: LogLevel = Field("WARNING", validation_alias="SHIPBOT_LOG_LEVEL")
    # who `shipbot chat` and `shipbot console` speak as without --as
    user: str = Field("root", validation_alias="USER")

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


class Settings(CommonSettings):
    """The chat adapters' settings (``shipbot serve``, ``shipbot discord sync``)."""

    slack_bot_token: SecretStr | None = Field(None, validation_alias="SLACK_BOT_TOKEN")
    # Socket Mode when set; otherwise HTTP mode, which needs the signing secret
    slack_app_token: SecretStr | None = Field(None, validation_alias="SLACK_APP_TOKEN")
    slack_signing_secret: SecretStr | None = Field(None, validation_alias="SLACK_SIGNING_SECRET")
    slack_api_url: str | None = Field(None, validation_alias="SLACK_API_URL")
    # HTTP mode listens on all interfaces by default: Slack has to reach it
    http_host: str = Field("0.0.0.0", validation_alias="SHIPBOT_HTTP_HOST")  # noqa: S104
    http_port: int = Field(3000, ge=1, le=65535, validation_alias="SHIPBOT_HTTP_PORT")
    slack_workers: int = Field(4, ge=1, validation_alias="SHIPBOT_SLACK_WORKERS")
    discord_token: SecretStr | None = Field(None, validation_alias="DISCORD_TOKEN")
    discord_guild_id: int | None = Field(None, ge=1, validation_alias="DISCORD_GUILD_ID")
    discord_api_url: str | None = Field(None, validation_alias="DISCORD_API_URL")
    # git webhooks at /hooks/<forge> on the HTTP server (bot/webhooks.py)
    webhooks: bool = Field(False, validation_alias="SHIPBOT_WEBHOOKS")
    # the token-authenticated CI deploy endpoint, POST /ci/deploy (bot/ci_endpoint.py)
    ci_endpoint: bool = Field(False, validation_alias="SHIPBOT_CI_ENDPOINT")


S = TypeVar("S", bound=CommonSettings)


def load(model: type[S]) -> S:
    """``model`` read from the environment, then from files named like the variables in
    ``SHIPBOT_SECRETS_DIR`` (default /run/secrets, where Swarm and Kubernetes mount
    secrets); a bad value raises SettingsError."""
    folder = os.environ.get("SHIPBOT_SECRETS_DIR") or SECRETS_DIR
    try:
        return model.model_validate(variables(model, Path(folder)))
    except ValidationError as exc:
        raise SettingsError(describe(model, exc)) from exc


def variables(model: type[CommonSettings], folder: Path) -> dict[str, str]:
    """Each field's variable, by its exact name: from the environment (empty is unset), else
    the stripped text of the file of that name in ``folder``, if there is one."""
    values = {}
    for field in model.model_fields.values():
        name = str(field.validation_alias)
        path = folder / name
        if os.environ.get(name):
            values[name] = os.environ[name]
        elif path.is_file():
            values[name] = path.read_text(encoding="utf-8").strip()
    return values


def describe(model: type[CommonSettings], exc: ValidationError) -> str:
    """``SHIPBOT_HTTP_PORT='x': …`` for each error, on one line."""
    problems = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"])
        message = error["msg"][:1].lower() + error["msg"][1:]
        problems.append(f"{name}={error['input']!r}: {message}")
    return "; ".join(problems)
