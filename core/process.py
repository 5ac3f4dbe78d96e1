"""Which process made a helper or a job, and whether that process still runs.

Every helper and job service shipbot makes (release and ``run`` jobs, volume helpers, a
verify's scratch database) carries ``shipbot.owner``: this process as
``BOOT/PIDNS/PID/START`` (the kernel's boot id, the pid namespace, the pid and its start
time in clock ticks since boot). Together they name one process for good: a pid used
again later has another start time.

``gone(owner)`` is True only when the owner is provably dead: it ran in this pid namespace
since this boot and no process with its pid and start time runs now. A restarted shipbot
in the same namespace (a restart of ``shipbot serve`` on a host, a new console) sweeps
what its dead predecessor left at once. An owner in another namespace or from another
boot cannot be checked from here: ``gone`` says None and the sweep waits for its age
bound instead, so a live process elsewhere is never cut short.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

LABEL_OWNER = "shipbot.owner"
PROC = Path("/proc")


def _boot_id(proc: Path) -> str:
    return (proc / "sys/kernel/random/boot_id").read_text().strip()


def _pid_namespace(proc: Path) -> str:
    link = os.readlink(proc / "self/ns/pid")  # "pid:[4026531836]"
    return link.removeprefix("pid:[").removesuffix("]")


def start_time(pid: int, proc: Path = PROC) -> str | None:
    """The start time of process ``pid`` (clock ticks since boot); None when none runs."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces: fields follow the
    # last ")"; the start time is field 22, the 20th after it
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else None


def identity(pid: int, proc: Path = PROC) -> str:
    """``BOOT/PIDNS/PID/START`` of process ``pid`` as seen from this namespace ("" when
    /proc cannot tell)."""
    try:
        started = start_time(pid, proc)
        if started is None:
            return ""
        return f"{_boot_id(proc)}/{_pid_namespace(proc)}/{pid}/{started}"
    except OSError:
        return ""


@functools.cache
def this_process() -> str:
    """This process's owner label ("" where there is no /proc)."""
    return identity(os.getpid())


def owner_labels() -> dict[str, str]:
    """The label a helper or job made by this process carries (none without /proc)."""
    me = this_process()
    return {LABEL_OWNER: me} if me else {}


def owned(spec: dict[str, Any]) -> dict[str, Any]:
    """A helper's or job's service ``spec`` labelled as made by this process."""
    return {**spec, "Labels": {**(spec.get("Labels") or {}), **owner_labels()}}


def gone(owner: str, proc: Path = PROC) -> bool | None:
    """True when ``owner`` provably no longer runs; False when it does; None when this
    process cannot tell (another pid namespace or boot, or a label it cannot read)."""
    parts = owner.split("/")
    if len(parts) != 4 or not parts[2].isdigit():
        return None
    boot, namespace, pid, started = parts
    try:
        if (boot, namespace) != (_boot_id(proc), _pid_namespace(proc)):
            return None
    except OSError:
        return None
    return start_time(int(pid), proc) != started
