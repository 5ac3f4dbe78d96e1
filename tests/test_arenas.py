"""serve caps glibc's malloc arenas (bot/arenas.py), unless the user set MALLOC_ARENA_MAX."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

ASK = "from bot import arenas; print(arenas.cap())"


def cap_in_a_process(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    run = subprocess.run(
        [sys.executable, "-c", ASK], env=clean | env, capture_output=True, text=True, check=True
    )
    return run.stdout.strip()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="only glibc has arenas to cap")
def test_serve_caps_the_arenas_and_a_users_setting_wins():
    assert cap_in_a_process() == "True"  # glibc took M_ARENA_MAX
    assert cap_in_a_process(MALLOC_ARENA_MAX="4") == "False"  # glibc read the user's already
