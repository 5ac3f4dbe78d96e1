"""The docker SDK's and its transport's errors as the core's own, naming the action."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import docker.errors
import requests

from core.errors import DeployError, EngineUnavailable


class TransportError(requests.exceptions.ConnectionError):
    """The way to the engine failed (an SSH connection or session), not the engine: its
    message says what happened and is shown as it is, never as "check dockerd"."""


@contextlib.contextmanager
def engine_errors(action: str) -> Iterator[None]:
    """Map SDK and transport errors to the core's own, naming what was being done."""
    try:
        yield
    except docker.errors.NotFound as exc:
        raise DeployError(f"{action}: not found ({exc.explanation or exc})") from exc
    except docker.errors.APIError as exc:
        raise DeployError(f"{action}: the Docker engine said: {exc.explanation or exc}") from exc
    except TransportError as exc:
        raise EngineUnavailable(f"{action}: {exc}") from exc
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        raise EngineUnavailable(
            f"{action}: the Docker engine stopped answering ({type(exc).__name__}); "
            "check that dockerd is running"
        ) from exc
    except docker.errors.DockerException as exc:
        raise EngineUnavailable(f"{action}: {exc}") from exc
