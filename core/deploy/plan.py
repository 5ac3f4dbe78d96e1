"""Pure builder: what a deploy would change, as lines for the channel (``deploy --dry-run``)."""

from __future__ import annotations

from typing import Any

from core.secrets import MASK


def _env(spec: dict[str, Any] | None) -> dict[str, str]:
    entries = (spec or {}).get("TaskTemplate", {}).get("ContainerSpec", {}).get("Env") or []
    return dict(entry.split("=", 1) for entry in entries)


def _container(spec: dict[str, Any] | None, key: str) -> Any:
    return (spec or {}).get("TaskTemplate", {}).get("ContainerSpec", {}).get(key)


def _replicas(spec: dict[str, Any] | None) -> int | None:
    return (spec or {}).get("Mode", {}).get("Replicated", {}).get("Replicas")


def _rollout(spec: dict[str, Any] | None) -> str:
    update = (spec or {}).get("UpdateConfig") or {}
    return f"{update.get('Parallelism', '-')} at a time, {update.get('Order', '-')}"


def diff(current: dict[str, Any] | None, desired: dict[str, Any], secrets: set[str]) -> list[str]:
    """Changes from the running service spec (None: not created yet) to the desired one."""
    lines = [] if current else [f"create service {desired['Name']}"]

    def show(key: str, value: str) -> str:
        return MASK if key in secrets else value

    old_image, new_image = _container(current, "Image"), _container(desired, "Image")
    if old_image != new_image:
        lines.append(f"image: {(old_image or '-').split('@')[0]} → {new_image}")
    if _replicas(current) != _replicas(desired):
        lines.append(f"replicas: {_replicas(current) or '-'} → {_replicas(desired)}")
    old_env, new_env = _env(current), _env(desired)
    for key in sorted(new_env.keys() - old_env.keys()):
        lines.append(f"env +{key}={show(key, new_env[key])}")
    for key in sorted(old_env.keys() - new_env.keys()):
        lines.append(f"env -{key}")
    for key in sorted(old_env.keys() & new_env.keys()):
        if old_env[key] != new_env[key]:
            lines.append(f"env ~{key}: {show(key, old_env[key])} → {show(key, new_env[key])}")
    old_labels = (current or {}).get("Labels") or {}
    new_labels = desired.get("Labels") or {}
    for key in sorted(old_labels.keys() | new_labels.keys()):
        if old_labels.get(key) != new_labels.get(key):
            lines.append(f"label {key}: {old_labels.get(key, '-')} → {new_labels.get(key, '-')}")
    for key, name in (
        ("Healthcheck", "healthcheck"),
        ("Args", "command"),
        ("Mounts", "volumes"),
        ("StopGracePeriod", "stop grace period"),
    ):
        if current and _container(current, key) != _container(desired, key):
            lines.append(f"{name} changes")
    if current and (current["TaskTemplate"].get("Resources") or {}) != (
        desired["TaskTemplate"].get("Resources") or {}
    ):
        lines.append("resources change")
    old_rollout, new_rollout = _rollout(current), _rollout(desired)
    if current and old_rollout != new_rollout:
        lines.append(f"rollout: {old_rollout} → {new_rollout}")
    return lines or ["nothing would change"]
