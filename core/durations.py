"""Durations as written in app.yml (``2s``, ``500ms``, ``1m30s``) to nanoseconds."""

import re

_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)")


def parse_duration_ns(text: str | int | float) -> int:
    """Parse ``"2s"``, ``"1m30s"``, ``"250ms"`` or a bare number of seconds."""
    if isinstance(text, bool):
        raise ValueError("expected a duration such as 2s, 500ms or 1m")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError("a duration cannot be negative")
        return int(text * 1_000_000_000)
    value = text.strip()
    pos, total = 0, 0
    for match in _PART.finditer(value):
        if match.start() != pos:
            break
        total += int(float(match.group(1)) * _UNITS_NS[match.group(2)])
        pos = match.end()
    if pos != len(value) or not value:
        raise ValueError(f"expected a duration such as 2s, 500ms or 1m, got {text!r}")
    return total


def format_duration(seconds: float) -> str:
    """Short human form for chat: ``850ms``, ``12.4s``, ``3m05s``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s"
