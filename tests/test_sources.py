"""core.apps.sources against real git: local origins, loopback servers, real children."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from core.apps import sources
from core.apps.git_credentials import redact, split_credentials
from core.errors import SourceError

TOKEN = "s3cr3t-t0ken-value"  # noqa: S105 (a test credential)
# Generous bounds: these check "does not hang", not speed.
PROMPTLY = 10.0


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """sources passes proxy variables to git; loopback servers must be reached directly."""
    for key in sources.PASSTHROUGH_ENV:
        monkeypatch.delenv(key, raising=False)


def _test_env(home: Path) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }


@dataclass
class Origin:
    """A bare repository and a work clone that commits and pushes to it."""

    bare: Path
    work: Path
    env: dict[str, str]

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=self.work, env=self.env, capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    def commit(self, files: dict[str, str], branch: str = "main") -> str:
        for name, text in files.items():
            (self.work / name).parent.mkdir(parents=True, exist_ok=True)
            (self.work / name).write_text(text)
        self.git("add", "--all")
        self.git("commit", "--quiet", "-m", f"change {sorted(files)}")
        self.git("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}")
        return self.git("rev-parse", "HEAD")

    def tag(self, name: str) -> None:
        self.git("tag", name)
        self.git("push", "--quiet", "origin", f"refs/tags/{name}")


def _make_origin(root: Path, name: str = "origin") -> Origin:
    env = _test_env(root)
    bare, work = root / f"{name}.git", root / f"{name}-work"
    for where, bare_flag in ((bare, ["--bare"]), (work, [])):
        subprocess.run(
            ["git", "init", "--quiet", "-b", "main", *bare_flag, str(where)], env=env, check=True
        )
    made = Origin(bare, work, env)
    made.git("remote", "add", "origin", str(bare))
    return made


@pytest.fixture
def origin(tmp_path: Path) -> Origin:
    return _make_origin(tmp_path)


def _call_in_thread(call: Callable[[], object]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def body() -> None:
        try:
            call()
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)

    thread = threading.Thread(target=body)
    thread.start()
    return thread, errors


# refs


def test_clone_resolves_branch_tag_and_commit(origin: Origin, tmp_path: Path) -> None:
    first = origin.commit({"app.yml": "name: api\n"})
    origin.tag("v1")
    second = origin.commit({"app.yml": "name: api\nreplicas: 2\n"})
    repo = tmp_path / "sources" / "api"

    assert sources.clone(str(origin.bare), repo) == second
    assert sources.resolve(repo, "main") == second
    assert sources.resolve(repo, "HEAD") == second
    assert sources.resolve(repo, "v1") == first
    assert sources.resolve(repo, first) == first
    assert sources.resolve(repo, first[:10]) == first
    assert sources.clone(str(origin.bare), repo, "v1") == first


def test_resolve_follows_a_branch_that_moved_without_touching_the_work_tree(
    origin: Origin, tmp_path: Path
) -> None:
    origin.commit({"app.yml": "old\n"})
    repo = tmp_path / "api"
    sources.clone(str(origin.bare), repo)
    moved = origin.commit({"app.yml": "new\n"})
    feature = origin.commit({"feature.txt": "x\n"}, branch="feature/x")

    assert sources.resolve(repo, "main") == moved
    assert sources.resolve(repo, "HEAD") == moved
    assert sources.resolve(repo, "feature/x") == feature
    assert (repo / "app.yml").read_text() == "old\n"
    assert sources.read_file(repo, moved, "app.yml") == "new\n"


def test_a_branch_deleted_on_origin_no_longer_resolves(origin: Origin, tmp_path: Path) -> None:
    origin.commit({"app.yml": "x\n"}, branch="release")
    origin.commit({"app.yml": "y\n"})
    # clone makes a local branch of origin's default one; it must not outlive origin's.
    subprocess.run(
        ["git", "symbolic-ref", "HEAD", "refs/heads/release"], cwd=origin.bare, check=True
    )
    repo = tmp_path / "api"
    sources.clone(str(origin.bare), repo)
    subprocess.run(["git", "symbolic-ref", "HEAD", "refs/heads/main"], cwd=origin.bare, check=True)
    origin.git("push", "--quiet", "origin", ":refs/heads/release")
    with pytest.raises(SourceError, match="no branch, tag or commit named 'release'"):
        sources.resolve(repo, "release")


def test_unknown_refs_and_option_like_refs_are_refused(origin: Origin, tmp_path: Path) -> None:
    origin.commit({"app.yml": "x\n"})
    repo = tmp_path / "api"
    sources.clone(str(origin.bare), repo)
    with pytest.raises(SourceError, match="no branch, tag or commit named 'nope'"):
        sources.resolve(repo, "nope")
    for bad in ("--upload-pack=touch", "a..b", "-x", "main;rm"):
        with pytest.raises(SourceError, match="not a valid git ref"):
            sources.resolve(repo, bad)
    with pytest.raises(SourceError, match="not a git URL"):
        sources.clone("--upload-pack=touch /tmp/x", tmp_path / "other")


def test_read_file_reports_a_missing_file(origin: Origin, tmp_path: Path) -> None:
    commit = origin.commit({"README": "x\n"})
    repo = tmp_path / "api"
    sources.clone(str(origin.bare), repo)
    with pytest.raises(SourceError, match="app.yml"):
        sources.read_file(repo, commit, "app.yml")
    with pytest.raises(SourceError, match="not a path inside"):
        sources.read_file(repo, commit, "../etc/passwd")


# dangerous URLs, hangs and shutdown


@pytest.mark.parametrize(
    ("url", "transport"), [("fd::0", "fd"), ("ext::sh -c touch% {marker}", "ext")]
)
def test_command_running_transports_are_refused(tmp_path: Path, url: str, transport: str) -> None:
    marker = tmp_path / "ran"
    started = time.monotonic()
    with pytest.raises(SourceError, match=f"transport '{transport}' not allowed"):
        sources.clone(url.format(marker=marker), tmp_path / "dest")
    assert time.monotonic() - started < PROMPTLY
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port whose connections complete (backlog) but never get a byte back."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def test_a_hanging_git_is_killed_at_the_timeout(silent_port: int, tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"git clone timed out after 0\.5s"):
        sources.clone(f"git://127.0.0.1:{silent_port}/x", tmp_path / "dest", timeout=0.5)
    assert time.monotonic() - started < PROMPTLY
    assert list(tmp_path.iterdir()) == []


def test_kill_children_ends_a_hanging_call(silent_port: int, tmp_path: Path) -> None:
    url = f"git://127.0.0.1:{silent_port}/x"
    thread, errors = _call_in_thread(lambda: sources.clone(url, tmp_path / "dest", timeout=300))
    deadline = time.monotonic() + PROMPTLY
    while sources.kill_children() == 0:
        assert time.monotonic() < deadline, "the git child never started"
        time.sleep(0.01)
    thread.join(PROMPTLY)
    assert not thread.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], SourceError)
    assert "stopped: shipbot is shutting down" in str(errors[0])
    assert sources.kill_children() == 0


# errors


def test_the_whole_git_error_is_reported(tmp_path: Path) -> None:
    (tmp_path / "not-a-repo").mkdir()
    with pytest.raises(SourceError) as raised:
        sources.clone(f"file://{tmp_path}/not-a-repo", tmp_path / "dest")
    message = str(raised.value)
    assert "does not appear to be a git repository" in message
    assert "Could not read from remote repository." in message
    assert "Please make sure you have the correct access rights\nand the repository exists." in (
        message
    )


def test_a_failed_reclone_keeps_the_existing_clone(origin: Origin, tmp_path: Path) -> None:
    commit = origin.commit({"app.yml": "name: api\n", "src/main.py": "print(1)\n"})
    parent = tmp_path / "sources"
    repo = parent / "api"
    sources.clone(str(origin.bare), repo)
    before = {p.relative_to(repo): p.read_bytes() for p in repo.rglob("*") if p.is_file()}

    with pytest.raises(SourceError):
        sources.clone(f"file://{tmp_path}/missing.git", repo)
    with pytest.raises(SourceError, match="no branch, tag or commit named 'nope'"):
        sources.clone(str(origin.bare), repo, "nope")

    after = {p.relative_to(repo): p.read_bytes() for p in repo.rglob("*") if p.is_file()}
    assert after == before
    assert [p.name for p in parent.iterdir()] == ["api"]
    assert sources.resolve(repo, "main") == commit


def test_a_reclone_replaces_the_old_clone(origin: Origin, tmp_path: Path) -> None:
    origin.commit({"old.txt": "x\n"})
    parent = tmp_path / "sources"
    sources.clone(str(origin.bare), parent / "api")
    new = _make_origin(tmp_path, "other").commit({"new.txt": "y\n"})

    assert sources.clone(str(tmp_path / "other.git"), parent / "api") == new
    assert (parent / "api" / "new.txt").is_file()
    assert [p.name for p in parent.iterdir()] == ["api"]


# credentials


def test_split_credentials_and_redact() -> None:
    assert split_credentials("https://user:TOK%40EN@git.example:8443/x.git?a=1") == (
        "https://git.example:8443/x.git?a=1",
        "user:TOK%40EN",
    )
    assert split_credentials("https://TOKEN@git.example/x") == (
        "https://git.example/x",
        "TOKEN",
    )
    for kept in ("ssh://git@git.example/x", "git@git.example:x.git", "/srv/x.git", "fd::0"):
        assert split_credentials(kept) == (kept, None)
    with pytest.raises(SourceError, match=r"ssh://git:\*\*\*@git.example"):
        split_credentials("ssh://git:hunter22@git.example/x")
    assert redact("fatal: 'https://u:p@ss@h/x' and http://tok@h/y, ssh://git@h/z") == (
        "fatal: 'https://u:***@h/x' and http://***@h/y, ssh://git@h/z"
    )


class _GitHTTPHandler(BaseHTTPRequestHandler):
    """`git http-backend` as a CGI, behind a check of the Authorization header."""

    server: _GitHTTPServer

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib name)
        pass

    def _serve(self) -> None:
        self.server.authorizations.append(self.headers.get("Authorization"))
        if self.headers.get("Authorization") != self.server.expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path, _, query = self.path.partition("?")
        env = {
            "PATH": os.environ["PATH"],
            "GIT_PROJECT_ROOT": str(self.server.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "HOME": str(self.server.root),
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            "REMOTE_ADDR": "127.0.0.1",
            "REMOTE_USER": "user",
        }
        done = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True)
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        headers = [line.split(":", 1) for line in head.decode().splitlines() if ":" in line]
        status = next((int(v.split()[0]) for k, v in headers if k.lower() == "status"), 200)
        self.send_response(status)
        for key, value in headers:
            if key.lower() != "status":
                self.send_header(key, value.strip())
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _GitHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path, expected: str) -> None:
        super().__init__(("127.0.0.1", 0), _GitHTTPHandler)
        self.root, self.expected = root, expected
        self.authorizations: list[str | None] = []


@pytest.fixture
def git_http(origin: Origin, tmp_path: Path) -> Iterator[_GitHTTPServer]:
    expected = "Basic " + base64.b64encode(f"user:{TOKEN}".encode()).decode()
    server = _GitHTTPServer(tmp_path, expected)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def test_a_url_token_reaches_git_only_through_its_environment(
    origin: Origin, git_http: _GitHTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = origin.commit({"app.yml": "name: api\n"})
    port = git_http.server_address[1]
    url = f"http://user:{TOKEN}@127.0.0.1:{port}/origin.git"
    executed: list[sources.GitCommand] = []
    real_run = sources.run

    def recording_run(command: sources.GitCommand, timeout: float = sources.GIT_TIMEOUT) -> bytes:
        executed.append(command)
        return real_run(command, timeout)

    monkeypatch.setattr(sources, "run", recording_run)
    clean, credential = split_credentials(url)
    repo = tmp_path / "sources" / "api"

    assert sources.clone(url, repo) == first
    second = origin.commit({"app.yml": "name: api\nreplicas: 2\n"})
    assert sources.resolve(repo, "main", credential) == second

    assert git_http.authorizations and set(git_http.authorizations) == {git_http.expected}
    assert executed and all(TOKEN not in " ".join(c.argv) for c in executed)
    header = f"Authorization: {git_http.expected}"
    assert all(header in c.env.values() for c in executed if c.verb in ("clone", "fetch"))
    stored = subprocess.run(
        ["grep", "-r", "--count", "--binary-files=text", TOKEN, str(repo)], capture_output=True
    )
    assert stored.returncode == 1, stored.stdout  # the token is in no file of the clone
    assert split_credentials(clean) == (clean, None)


def test_errors_of_a_url_with_a_token_never_show_it(
    origin: Origin, git_http: _GitHTTPServer, tmp_path: Path
) -> None:
    origin.commit({"app.yml": "name: api\n"})
    port = git_http.server_address[1]
    cases = [
        f"http://user:wrong-{TOKEN}@127.0.0.1:{port}/origin.git",  # refused by the server
        f"http://user:{TOKEN}@127.0.0.1:{port}/missing.git",  # not found
        f"http://{TOKEN}@127.0.0.1:{port}/origin.git",  # token-only, refused
    ]
    for url in cases:
        with pytest.raises(SourceError) as raised:
            sources.clone(url, tmp_path / "dest")
        assert TOKEN not in str(raised.value)
        assert "askpass" not in str(raised.value)
        assert f"127.0.0.1:{port}" in str(raised.value)
    assert not (tmp_path / "dest").exists()


# snapshots and concurrency


def test_concurrent_snapshots_hold_their_own_commit(origin: Origin, tmp_path: Path) -> None:
    one = origin.commit({"app.yml": "one\n", "only-in-one.txt": "1\n"})
    origin.git("rm", "--quiet", "only-in-one.txt")
    two = origin.commit({"app.yml": "two\n", "dir/only-in-two.txt": "2\n"})
    repo = tmp_path / "api"
    sources.clone(str(origin.bare), repo)
    both_open = threading.Barrier(2, timeout=PROMPTLY)
    one_checkout = threading.Lock()  # git itself refuses two checkouts of one work tree
    seen: dict[str, dict[str, str]] = {}
    folders: dict[str, Path] = {}

    def take(commit: str) -> None:
        with sources.snapshot(repo, commit) as folder:
            both_open.wait()
            # A later checkout of the shared clone must not reach an open snapshot.
            other = one if commit == two else two
            with one_checkout:
                subprocess.run(
                    ["git", "-C", str(repo), "checkout", "-q", "--force", "--detach", other],
                    check=True,
                    capture_output=True,
                )
            both_open.wait()
            folders[commit] = folder
            seen[commit] = {
                str(p.relative_to(folder)): p.read_text() for p in folder.rglob("*") if p.is_file()
            }

    runs = [_call_in_thread(lambda c=c: take(c)) for c in (one, two)]
    for thread, errors in runs:
        thread.join(PROMPTLY)
        assert not errors
    assert seen[one] == {"app.yml": "one\n", "only-in-one.txt": "1\n"}
    assert seen[two] == {"app.yml": "two\n", "dir/only-in-two.txt": "2\n"}
    assert not folders[one].exists() and not folders[two].exists()


def test_a_snapshot_is_removed_when_its_block_raises(origin: Origin, tmp_path: Path) -> None:
    commit = origin.commit({"app.yml": "x\n"})
    repo = tmp_path / "api"
    sources.clone(str(origin.bare), repo)
    with pytest.raises(RuntimeError), sources.snapshot(repo, commit) as folder:
        raise RuntimeError("the build failed")
    assert not folder.parent.exists()


def test_resolve_from_many_threads_at_once(origin: Origin, tmp_path: Path) -> None:
    commit = origin.commit({"app.yml": "x\n"})
    origin.tag("v1")
    repo = tmp_path / "api"
    sources.clone(str(origin.bare), repo)
    moved = origin.commit({"app.yml": "y\n"})
    start = threading.Barrier(8, timeout=PROMPTLY)
    results: list[str] = []

    def one_resolve(ref: str) -> None:
        start.wait()
        results.append(sources.resolve(repo, ref))

    runs = [_call_in_thread(lambda r=r: one_resolve(r)) for r in ["main", "v1"] * 4]
    for thread, errors in runs:
        thread.join(PROMPTLY)
        assert not errors
    assert sorted(results) == sorted([moved, commit] * 4)


def test_git_runs_without_the_operators_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/tmp/evil")
    command = sources.git_command("fetch", "origin", cwd=Path("/r"), credential="u:tokenvalue")
    assert command.argv == ["git", "fetch", "origin"]
    env = command.env
    assert "GIT_CONFIG_GLOBAL" not in env
    assert env["HOME"] != os.environ.get("HOME") and Path(env["HOME"]).is_dir()
    assert env["GIT_ALLOW_PROTOCOL"] == "file:git:http:https:ssh"
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert env["GIT_ASKPASS"] == env["SSH_ASKPASS"] == ""
    assert env["GIT_SSH_COMMAND"] == "ssh -oBatchMode=yes"
    assert env["GIT_CONFIG_COUNT"] == "1"
    assert env["GIT_CONFIG_KEY_0"] == "http.extraHeader"
    assert env["GIT_CONFIG_VALUE_0"] == "Authorization: Basic " + base64.b64encode(
        b"u:tokenvalue"
    ).decode("ascii")


def test_resolve_waits_for_another_process_holding_the_repo_lock(
    origin: Origin, tmp_path: Path
) -> None:
    commit = origin.commit({"app.yml": "x\n"})
    repo = tmp_path / "api"
    sources.clone(str(origin.bare), repo)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys\n"
            "lock = open(sys.argv[1], 'a')\n"
            "fcntl.flock(lock, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "sys.stdin.read()\n",
            str(repo / ".git" / sources.LOCK_NAME),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    assert holder.stdout.readline() == "locked\n"
    results: list[str] = []
    thread, errors = _call_in_thread(lambda: results.append(sources.resolve(repo, "main")))
    thread.join(0.5)  # a bounded check that it waits, not a wait for something
    assert thread.is_alive() and not results
    holder.stdin.close()
    holder.wait(PROMPTLY)
    holder.stdout.close()
    thread.join(PROMPTLY)
    assert not errors and results == [commit]
