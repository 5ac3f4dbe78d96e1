"""A SIGTERM (a CI time-out) unwinds like Ctrl-C, so a benchmark's clean-up runs, once."""

from __future__ import annotations

import signal


def stop(*_: object) -> None:
    """Later signals (``timeout`` passes its own on) must not cut the clean-up short."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise SystemExit(143)


def unwind_on_sigterm() -> None:
    signal.signal(signal.SIGTERM, stop)
