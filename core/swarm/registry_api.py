"""What registry images ask of a real engine, always with exactly the credentials given:
``{}`` goes as an anonymous header, never replaced by the host's docker config (the SDK
falls back to it only when no credentials are passed at all)."""

from __future__ import annotations

import docker
import requests

from core.errors import DeployError
from core.swarm import split_tag

LOGIN_TIMEOUT = 20  # a registry that does not answer: the engine itself would wait longer


def pull(api: docker.APIClient, image: str, auth: dict[str, str]) -> None:
    repository, tag = split_tag(image)  # by digest: the whole reference, no tag
    for message in api.pull(
        repository,
        tag=tag or (None if "@" in repository else "latest"),
        stream=True,
        decode=True,
        auth_config=auth,
    ):
        if "error" in message:
            raise DeployError(f"pulling {image}: {message['error']}")


def registry_digest(api: docker.APIClient, image: str, auth: dict[str, str]) -> str:
    """The digest the registry serves for ``image``, asked through the engine."""
    return api.inspect_distribution(image, auth_config=auth)["Descriptor"]["digest"]


def check_login(api: docker.APIClient, auth: dict[str, str]) -> None:
    """The engine's ``/auth``, called directly: the SDK's ``login`` would keep the
    credentials in the client, where a later call without auth would pick them up."""
    try:
        response = api._post_json(api._url("/auth"), data=auth, timeout=LOGIN_TIMEOUT)
    except requests.exceptions.Timeout as exc:
        raise DeployError(
            f"logging in to {auth['serveraddress']}: no answer within {LOGIN_TIMEOUT}s"
        ) from exc
    api._raise_for_status(response)
