"""JSON from outside, read with bounds: a body nested deeper than ``MAX_DEPTH`` is refused
before the parser recurses into it (a deep body would end in a RecursionError)."""

from __future__ import annotations

import json
import re
from typing import Any

from core.pipelines import PipelineError

MAX_DEPTH = 32  # a forge's payload nests about eight levels
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


def too_deep(body: bytes, limit: int) -> bool:
    """Whether arrays and objects in ``body`` nest deeper than ``limit`` (brackets inside
    strings aside); it stops at the first level past the limit."""
    depth = 0
    for match in _BRACKET.finditer(_STRING.sub(b'""', body)):
        depth += 1 if match[0] in b"[{" else -1
        if depth > limit:
            return True
    return False


def load_json(body: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON value of ``body``; a ``PipelineError`` for anything else or too deep."""
    if too_deep(body, max_depth):
        raise PipelineError(f"the JSON nests deeper than {max_depth} levels")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PipelineError(f"the body is not JSON: {exc}") from exc
