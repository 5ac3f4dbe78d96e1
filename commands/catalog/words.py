"""The status words of tasks, one wording for apps (`status`) and databases (`db list`)."""

from __future__ import annotations


def tasks_word(running: int, desired: int, healthchecked: bool = True) -> str:
    """``2/3 healthy`` (``running`` without a health check); ``0/N down`` when none of the
    N wanted runs: a service that should run and does not is down, not healthy."""
    if desired > 0 and running == 0:
        return f"0/{desired} down"
    return f"{running}/{desired} {'healthy' if healthchecked else 'running'}"
