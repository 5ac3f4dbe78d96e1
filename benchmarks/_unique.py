"""One prefix per benchmark run: every service, network, volume, config and image tag a
benchmark makes on the engine carries it, so two runs on one engine (or a run beside the
tests) never share a name, and so never remove each other's objects."""

from __future__ import annotations

import uuid

RUN = uuid.uuid4().hex[:6]  # this process's run


def unique(base: str) -> str:
    """``base`` with this run's tag: still an app, service and volume name (a-z, 0-9, '-')."""
    return f"{base}-{RUN}"
