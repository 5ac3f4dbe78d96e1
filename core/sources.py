"""Where an app's code and ``app.yml`` come from: a local folder or a git repository."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from core.errors import SourceError

GIT_TIMEOUT = 300
# A ref is passed to git as one argv item; refuse option-like or odd ones anyway.
REF_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")


def check_ref(ref: str) -> str:
    if not REF_RE.match(ref) or ".." in ref:
        raise SourceError(f"{ref!r} is not a valid git ref (letters, digits, '.', '_', '/', '-')")
    return ref


def _git(*args: str, cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
            env={"GIT_TERMINAL_PROMPT": "0", "PATH": "/usr/bin:/bin:/usr/local/bin"},
        )
    except FileNotFoundError as exc:
        raise SourceError("git is not installed on the control plane host") from exc
    except subprocess.TimeoutExpired as exc:
        raise SourceError(f"git {args[0]} took longer than {GIT_TIMEOUT}s") from exc
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise SourceError(f"git {args[0]} failed: {last}")
    return done.stdout.strip()


def clone(url: str, dest: Path, ref: str | None) -> str:
    """Clone ``url`` into ``dest`` (replacing it) and return the commit checked out."""
    if url.startswith("-"):
        raise SourceError(f"{url!r} is not a git URL")
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    _git("clone", "--quiet", "--", url, str(dest))
    if ref:
        checkout(dest, ref)
    return _git("rev-parse", "HEAD", cwd=dest)


def checkout(repo: Path, ref: str) -> str:
    """Fetch ``ref`` from origin and check it out; returns the commit."""
    check_ref(ref)
    _git("fetch", "--quiet", "--tags", "origin", cwd=repo)
    for candidate in (f"origin/{ref}", ref):
        try:
            commit = _git("rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}", cwd=repo)
        except SourceError:
            continue
        _git("checkout", "--quiet", "--force", "--detach", commit, cwd=repo)
        return commit
    raise SourceError(f"no branch, tag or commit named {ref!r} in the app's repository")
