"""Where an app's code and ``app.yml`` come from: a git repository, read safely.

Every git call goes through ``git_command`` (a pure builder: argv, environment, folder)
and ``run`` (the one executor). git never reads the operator's config, never prompts,
never talks a transport other than file/git/http/https/ssh, and a hung child is killed
with its whole process group. Credentials reach git through its environment only, so
they are in no argv, no stored URL and no error message.
"""

from __future__ import annotations

import atexit
import fcntl
import functools
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path

from core.apps.git_credentials import basic_auth, scrub, split_credentials
from core.errors import SourceError
from core.names import is_ref

GIT_TIMEOUT = 120.0
# A ref is passed to git as one argv item; refuse option-like or odd ones anyway.
SHA_RE = re.compile(r"^[0-9a-f]{4,64}$")
# fd:: and ext:: run arbitrary commands or read the bot's own stdin; no app needs them.
ALLOWED_PROTOCOLS = "file:git:http:https:ssh"
# Where a fetch of "HEAD" keeps origin's current default branch: refs/remotes/origin/HEAD
# is only written by clone and would go stale.
ORIGIN_HEAD = "refs/shipbot/origin-head"
LOCK_NAME = "shipbot.lock"
MAX_ERROR_CHARS = 20_000
# The operator's network setup still applies; nothing else of the bot's environment does.
_PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY")
PASSTHROUGH_ENV = (*_PROXIES, *(p.lower() for p in _PROXIES), "SSH_AUTH_SOCK", "SSL_CERT_FILE")
# Auto-gc would otherwise detach into its own session, out of reach of the timeout.
NO_DETACH = {"gc.autoDetach": "false", "maintenance.autoDetach": "false"}


def check_ref(ref: str) -> str:
    if not is_ref(ref):
        raise SourceError(f"{ref!r} is not a valid git ref (letters, digits, '.', '_', '/', '-')")
    return ref


@dataclass(frozen=True)
class GitCommand:
    """One git invocation, built but not run."""

    verb: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path | None = None
    credential: str | None = None  # only to scrub it from error messages


@functools.cache
def _private_home() -> str:
    # No ~/.gitconfig, credential helper or url.insteadOf of the operator applies. OpenSSH
    # finds ~/.ssh through the passwd entry, not $HOME, so deploy keys keep working.
    home = tempfile.mkdtemp(prefix="shipbot-git-home-")
    atexit.register(shutil.rmtree, home, True)
    return home


def git_command(
    verb: str,
    *args: str,
    cwd: Path | None = None,
    credential: str | None = None,
    config: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> GitCommand:
    """``git verb args`` with the whole environment of the child; ``env`` adds to it."""
    child = {key: os.environ[key] for key in PASSTHROUGH_ENV if key in os.environ}
    child |= {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": _private_home(),
        "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        # Empty, not unset: git then skips core.askPass and SSH_ASKPASS as well.
        "GIT_ASKPASS": "",
        "SSH_ASKPASS": "",
        "SSH_ASKPASS_REQUIRE": "never",
        "GIT_SSH_COMMAND": "ssh -oBatchMode=yes",
        "GIT_ALLOW_PROTOCOL": ALLOWED_PROTOCOLS,
    }
    settings = dict(config or {})
    if credential:
        settings["http.extraHeader"] = f"Authorization: Basic {basic_auth(credential)}"
    for index, (key, value) in enumerate(settings.items()):
        child[f"GIT_CONFIG_KEY_{index}"] = key
        child[f"GIT_CONFIG_VALUE_{index}"] = value
    child["GIT_CONFIG_COUNT"] = str(len(settings))
    return GitCommand(verb, ["git", verb, *args], child | dict(env or {}), cwd, credential)


_children: dict[int, subprocess.Popen[bytes]] = {}
_stopped: set[int] = set()
# Re-entrant: kill_children may run in a signal handler on a thread that holds it.
_children_lock = threading.RLock()


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def kill_children() -> int:
    """Kill every running git child (and its helpers); returns how many were killed."""
    killed = 0
    with _children_lock:
        for proc in _children.values():
            # Not reaped yet, so the pid still names our child's process group.
            if proc.returncode is None:
                _stopped.add(proc.pid)
                _kill_group(proc)
                killed += 1
    return killed


def _drain(proc: subprocess.Popen[bytes]) -> bytes:
    """stderr of a killed child, without waiting on a helper that escaped its group."""
    try:
        return proc.communicate(timeout=5)[1]
    except subprocess.TimeoutExpired:
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
        proc.wait()
        return b""


def run(command: GitCommand, timeout: float = GIT_TIMEOUT) -> bytes:
    """Run ``command`` and return its stdout; any failure is a SourceError."""
    if command.cwd is not None and not command.cwd.is_dir():
        raise SourceError(f"no git repository at {command.cwd}: register the app again")
    # started and listed under the lock: a stop in between would miss the child, which then
    # outlives shipbot (seen when git answered its server before this thread listed it)
    with _children_lock:
        try:
            proc = subprocess.Popen(
                command.argv,
                cwd=command.cwd,
                env=command.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            raise SourceError("git is not installed on the control plane host") from exc
        _children[proc.pid] = proc
    timed_out = False
    try:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
            out, err = b"", _drain(proc)
    finally:
        if proc.returncode is None:  # interrupted: leave no orphan behind
            _kill_group(proc)
            _drain(proc)
        with _children_lock:
            del _children[proc.pid]
            stopped = proc.pid in _stopped
            _stopped.discard(proc.pid)
    # All of it: git's first lines say what failed, its last ones what to do.
    detail = scrub(err.decode("utf-8", "replace").strip(), command.credential)[-MAX_ERROR_CHARS:]
    if "terminal prompts disabled" in detail:
        detail += "\n(a login is needed and none was accepted: give a token in the URL)"
    if stopped:
        raise SourceError(f"git {command.verb} was stopped: shipbot is shutting down")
    if timed_out:
        said = f"; git said: {detail}" if detail else ""
        raise SourceError(
            f"git {command.verb} timed out after {timeout:g}s and was stopped: "
            f"is the repository's host reachable?{said}"
        )
    if proc.returncode != 0:
        raise SourceError(
            f"git {command.verb} failed (exit {proc.returncode}): {detail or '(no output)'}"
        )
    return out


def _git(*args: str, repo: Path, timeout: float = GIT_TIMEOUT) -> str:
    return run(git_command(*args, cwd=repo), timeout).decode("utf-8", "replace").strip()


def _git_dir(repo: Path) -> Path:
    return repo / ".git" if (repo / ".git").is_dir() else repo


@contextmanager
def _repo_lock(repo: Path) -> Iterator[None]:
    """Serialise writers of one repository, across threads and processes."""
    try:
        handle = open(_git_dir(repo) / LOCK_NAME, "a")  # noqa: SIM115 (held across a yield)
    except FileNotFoundError as exc:
        raise SourceError(f"no git repository at {repo}: register the app again") from exc
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


def _lookup(repo: Path, ref: str, timeout: float) -> str:
    """The commit ``ref`` names among what was fetched: branch, then tag, then commit."""
    if ref == "HEAD":
        candidates = [ORIGIN_HEAD, "refs/remotes/origin/HEAD"]
    else:
        candidates = [f"refs/remotes/origin/{ref}", f"refs/tags/{ref}"]
        # Only a hex name may be a commit: a bare "main" would find the stale local branch.
        if SHA_RE.match(ref):
            candidates.append(ref)
    for candidate in candidates:
        spec = f"{candidate}^{{commit}}"
        try:
            return _git("rev-parse", "--verify", "--quiet", spec, repo=repo, timeout=timeout)
        except SourceError:
            continue
    raise SourceError(f"no branch, tag or commit named {ref!r} in the app's repository")


def resolve(
    repo: Path, ref: str, credential: str | None = None, *, timeout: float = GIT_TIMEOUT
) -> str:
    """Fetch origin and return the commit ``ref`` names now; the work tree is not touched."""
    check_ref(ref)
    refspecs = ["+refs/heads/*:refs/remotes/origin/*"]
    if ref == "HEAD":
        refspecs.append(f"+HEAD:{ORIGIN_HEAD}")
    with _repo_lock(repo):
        fetch = git_command(
            "fetch", "--quiet", "--prune", "--prune-tags", "--tags", "--force", "origin",
            *refspecs, cwd=repo, credential=credential, config=NO_DETACH,
        )  # fmt: skip
        run(fetch, timeout)
        return _lookup(repo, ref, timeout)


def clone(
    url: str,
    dest: Path,
    ref: str | None = None,
    credential: str | None = None,
    *,
    timeout: float = GIT_TIMEOUT,
    accept: Callable[[Path, str], None] | None = None,
) -> str:
    """Clone ``url`` into ``dest`` at ``ref`` and return the commit; a failure keeps the old.

    ``accept(clone, commit)`` may refuse the new clone (raise) before it replaces the old.
    """
    url, inline = split_credentials(url)
    credential = credential or inline
    if url.startswith("-"):
        raise SourceError(f"{url!r} is not a git URL")
    if ref is not None:
        check_ref(ref)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.cloning-", dir=dest.parent))
    try:
        command = git_command(
            "clone", "--quiet", "--no-checkout", "--", url, str(staging),
            credential=credential, config=NO_DETACH,
        )  # fmt: skip
        run(command, timeout)
        commit = _lookup(staging, ref or "HEAD", timeout)
        # A work tree, so whoever looks into the clone on the host sees the registered files.
        _git("checkout", "--quiet", "--force", "--detach", commit, repo=staging, timeout=timeout)
        if accept is not None:
            accept(staging, commit)
        _swap_into_place(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return commit


def _swap_into_place(staging: Path, dest: Path) -> None:
    """Put ``staging`` at ``dest``; the old ``dest`` is deleted only once the new one is there."""
    if not dest.exists():
        staging.rename(dest)
        return
    graveyard = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
    old = graveyard / dest.name
    # A fetch running in the old clone finishes before its folder moves away.
    with _repo_lock(dest) if (dest / ".git").is_dir() else nullcontext():
        dest.rename(old)
        try:
            staging.rename(dest)
        except BaseException:
            old.rename(dest)
            shutil.rmtree(graveyard, ignore_errors=True)
            raise
    shutil.rmtree(graveyard, ignore_errors=True)


@contextmanager
def snapshot(repo: Path, commit: str, *, timeout: float = GIT_TIMEOUT) -> Iterator[Path]:
    """A private folder holding exactly the tree of ``commit``, removed on exit."""
    check_ref(commit)
    if not repo.is_dir():
        raise SourceError(f"no git repository at {repo}: register the app again")
    holder = Path(tempfile.mkdtemp(prefix="shipbot-snapshot-"))
    try:
        tree = holder / "tree"
        tree.mkdir()
        # A private index and work tree: the clone's own index and files are never touched,
        # and unlike `git archive` no export-ignore attribute drops files from the build.
        private = {
            "GIT_DIR": str(_git_dir(repo).resolve()),
            "GIT_WORK_TREE": str(tree),
            "GIT_INDEX_FILE": str(holder / "index"),
        }
        run(git_command("read-tree", f"{commit}^{{tree}}", cwd=tree, env=private), timeout)
        run(git_command("checkout-index", "--all", cwd=tree, env=private), timeout)
        yield tree
    finally:
        shutil.rmtree(holder, ignore_errors=True)


def read_file(repo: Path, commit: str, path: str, *, timeout: float = GIT_TIMEOUT) -> str:
    """The text of ``path`` at ``commit``, read from git's objects without a work tree."""
    check_ref(commit)
    if path.startswith(("/", "-")) or ".." in Path(path).parts:
        raise SourceError(f"{path!r} is not a path inside the repository")
    data = run(git_command("cat-file", "blob", f"{commit}:{path}", cwd=repo), timeout)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(f"{path} at {commit[:12]} is not UTF-8 text") from exc


def fetch_commit(
    repo: Path,
    commit: str,
    refspecs: list[str],
    credential: str | None = None,
    *,
    timeout: float = GIT_TIMEOUT,
) -> str:
    """Fetch origin's branches, then each of ``refspecs`` origin has (a pull request's head,
    where a fork's commits are), and return ``commit`` once the clone holds it."""
    if not (SHA_RE.match(commit) and len(commit) == 40):
        raise SourceError(f"{commit!r} is not a full commit id")
    with _repo_lock(repo):
        for refspec in ["+refs/heads/*:refs/remotes/origin/*", *refspecs]:
            fetch = git_command(
                "fetch", "--quiet", "--force", "origin", refspec,
                cwd=repo, credential=credential, config=NO_DETACH,
            )  # fmt: skip
            try:
                run(fetch, timeout)
            except SourceError:
                if refspec in refspecs:
                    continue  # that forge does not publish it
                raise
        try:
            return _git("rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}", repo=repo)
        except SourceError as exc:
            raise SourceError(
                f"commit {commit[:12]} is not in the app's repository (nor its pull requests)"
            ) from exc
