"""glibc's malloc arenas, capped for the long-running ``serve``.

glibc gives each thread that allocates an arena of its own, up to eight per core, and keeps
what was freed in it for that thread's next allocation. ``serve``'s worker threads (engine
reads over HTTP and SSH, SQLite) each touched an arena of their own in their first rounds,
and its resident memory rose for two minutes after start and stayed there. Two arenas, as
``MALLOC_ARENA_MAX=2`` would give, share what the threads free; a ``MALLOC_ARENA_MAX`` the
user set wins (glibc has read it already). Not glibc (musl, macOS): nothing to cap.

``trim`` (serve's housekeeping round) gives back to the system the pages freed inside the
arenas since, which glibc keeps unless one freed block reaches the top of the heap.
"""

from __future__ import annotations

import ctypes
import functools
import os
from typing import Any

M_ARENA_MAX = -8  # malloc.h
ARENAS = 2


def _function(name: str) -> Any:
    """The C library's function ``name``, or None where it has none (not glibc)."""
    return getattr(_process(), name, None)


@functools.cache
def _process() -> Any:
    try:
        return ctypes.CDLL(None)  # the interpreter and the C library it runs on
    except OSError:
        return None


def cap(limit: int = ARENAS) -> bool:
    """Caps the arenas threads made from now on may use; whether it did."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    mallopt = _function("mallopt")
    return bool(mallopt is not None and mallopt(M_ARENA_MAX, limit) == 1)


def trim() -> None:
    """``malloc_trim(0)``: the freed pages of every arena back to the system (glibc only)."""
    malloc_trim = _function("malloc_trim")
    if malloc_trim is not None:
        malloc_trim(0)
