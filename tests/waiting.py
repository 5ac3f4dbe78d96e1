"""Waiting on a real part, with a deadline: a check read in a thread (it may read the store or
the engine) until it returns something truthy."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any


async def until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """``check()``'s first truthy answer within ``timeout`` seconds; else an AssertionError
    naming ``what`` was waited for."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await asyncio.to_thread(check)
        if found:
            return found
        await asyncio.sleep(0.3)
    raise AssertionError(f"not within {timeout:.0f}s: {what}")
