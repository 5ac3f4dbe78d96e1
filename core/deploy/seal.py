"""Pure builder: a service spec as stored with its release, secret values encrypted.

A release keeps the exact spec it ran, so a rollback re-applies it; the secrets in it are
sealed with the vault's key and unsealed only when the spec goes back to the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SEALED = "sealed:"


def with_env(spec: dict[str, Any], env: list[str]) -> dict[str, Any]:
    template = spec["TaskTemplate"]
    return {
        **spec,
        "TaskTemplate": {**template, "ContainerSpec": {**template["ContainerSpec"], "Env": env}},
    }


def _entries(spec: dict[str, Any]) -> list[tuple[str, str]]:
    env = spec["TaskTemplate"]["ContainerSpec"].get("Env", [])
    return [(key, value) for key, _, value in (entry.partition("=") for entry in env)]


def seal(
    spec: dict[str, Any], secret_keys: set[str] | frozenset[str], encrypt: Callable[[str], str]
) -> dict[str, Any]:
    return with_env(
        spec,
        [
            f"{key}={SEALED}{encrypt(value)}" if key in secret_keys else f"{key}={value}"
            for key, value in _entries(spec)
        ],
    )


def unseal(spec: dict[str, Any], decrypt: Callable[[str], str]) -> dict[str, Any]:
    return with_env(
        spec,
        [
            f"{key}={decrypt(value.removeprefix(SEALED)) if value.startswith(SEALED) else value}"
            for key, value in _entries(spec)
        ],
    )
