"""Forge payloads read into a few neutral events: a push, a pull request, or something else.

GitHub and Gitea share a shape; GitLab names things its own way (merge requests, ``iid``).
A payload missing what an event needs is a ``PipelineError`` (the endpoint answers 400).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from core.pipelines import PipelineError

EVENT_HEADER = {"github": "x-github-event", "gitlab": "x-gitlab-event", "gitea": "x-gitea-event"}
BRANCH_PREFIX = "refs/heads/"
NO_COMMIT = "0" * 40

# what happened to a pull request, in the few words previews act on
PullAction = Literal["open", "update", "close", "other"]
_GITHUB_ACTIONS: dict[str, PullAction] = {
    "opened": "open",
    "reopened": "open",
    "synchronize": "update",
    "synchronized": "update",  # Gitea's word
    "closed": "close",
}
_GITLAB_ACTIONS: dict[str, PullAction] = {
    "open": "open",
    "reopen": "open",
    "update": "update",
    "close": "close",
    "merge": "close",
}


@dataclass(frozen=True)
class Repository:
    name: str  # owner/repo, as the forge shows it
    urls: tuple[str, ...]  # every address the forge gives for it
    web_url: str = ""
    project_id: str = ""  # GitLab's numeric id (its API addresses projects by it)


@dataclass(frozen=True)
class Push:
    forge: str
    repository: Repository
    branch: str | None  # None: a tag or another kind of ref
    commit: str
    who: str
    deleted: bool = False
    # every forge login the payload names as pushing it (``github:alice``), for four eyes
    logins: tuple[str, ...] = ()


@dataclass(frozen=True)
class PullRequest:
    forge: str
    repository: Repository
    number: int
    action: PullAction
    raw_action: str
    head_sha: str
    head_ref: str
    from_fork: bool
    title: str
    author: str
    merged: bool = False


@dataclass(frozen=True)
class Other:
    """An event previews and deploys ignore (a ping, an issue comment …)."""

    forge: str
    kind: str
    repository: Repository | None = field(default=None)


Event = Push | PullRequest | Other


def _get(payload: Any, *path: str) -> Any:
    value = payload
    for key in path:
        if not isinstance(value, dict) or key not in value:
            raise PipelineError(f"the payload has no {'.'.join(path)}")
        value = value[key]
    return value


def _text(payload: Any, *path: str, default: str = "") -> str:
    try:
        value = _get(payload, *path)
    except PipelineError:
        return default
    return str(value) if value is not None else default


def _repository(block: Any) -> Repository:
    """GitHub's and Gitea's ``repository`` block."""
    urls = tuple(
        str(block[key])
        for key in ("clone_url", "ssh_url", "git_url", "html_url", "url")
        if isinstance(block, dict) and block.get(key)
    )
    if not urls:
        raise PipelineError("the payload names no repository (repository.clone_url)")
    return Repository(_text(block, "full_name"), urls, _text(block, "html_url"))


def _gitlab_repository(block: Any) -> Repository:
    urls = tuple(
        str(block[key])
        for key in ("git_http_url", "git_ssh_url", "web_url", "http_url", "ssh_url")
        if isinstance(block, dict) and block.get(key)
    )
    if not urls:
        raise PipelineError("the payload names no repository (project.git_http_url)")
    name = _text(block, "path_with_namespace")
    return Repository(name, urls, _text(block, "web_url"), _text(block, "id"))


def _branch(ref: str) -> str | None:
    return ref.removeprefix(BRANCH_PREFIX) if ref.startswith(BRANCH_PREFIX) else None


def _logins(forge: str, *names: str) -> tuple[str, ...]:
    return tuple(sorted({f"{forge}:{name.lower()}" for name in names if name}))


def _from_fork(pull: Any, base: Repository) -> bool:
    """Whether the head lives in another repository than the base: a head repository the
    payload does not name (the forge sends null once a fork is deleted) counts as a fork."""
    head = _text(pull, "head", "repo", "full_name")
    against = _text(pull, "base", "repo", "full_name") or base.name
    return not head or not against or head.lower() != against.lower()


def parse(forge: str, headers: Mapping[str, str], payload: Any) -> Event:
    """The event a forge's delivery carries; ``headers`` with lowercase names."""
    if not isinstance(payload, dict):
        raise PipelineError("the payload is not a JSON object")
    kind = headers.get(EVENT_HEADER[forge], "")
    if forge == "gitlab":
        return _gitlab(kind, payload)
    if kind == "push":
        after = _text(payload, "after")
        names = [
            _text(payload, *path)
            for path in (("pusher", "name"), ("pusher", "login"), ("pusher", "username"))
        ]
        sender = _text(payload, "sender", "login")
        return Push(
            forge,
            _repository(_get(payload, "repository")),
            _branch(str(_get(payload, "ref"))),
            after,
            next((name for name in names if name), sender),
            deleted=bool(payload.get("deleted")) or after == NO_COMMIT,
            logins=_logins(forge, *names, sender),
        )
    if kind == "pull_request":
        pull = _get(payload, "pull_request")
        raw = str(_get(payload, "action"))
        base = _repository(_get(payload, "repository"))
        return PullRequest(
            forge,
            base,
            int(_get(payload, "number")),
            _GITHUB_ACTIONS.get(raw, "other"),
            raw,
            str(_get(pull, "head", "sha")),
            _text(pull, "head", "ref"),
            _from_fork(pull, base),
            _text(pull, "title"),
            _text(pull, "user", "login"),
            merged=bool(pull.get("merged")),
        )
    block = payload.get("repository")
    return Other(forge, kind or "unknown", _repository(block) if block else None)


def _gitlab_fork(attrs: Any) -> bool:
    """A merge request from another project, or from one the payload does not name."""
    source, target = _text(attrs, "source_project_id"), _text(attrs, "target_project_id")
    return not source or not target or source != target


def _gitlab(kind: str, payload: dict[str, Any]) -> Event:
    if kind == "Push Hook":
        after = _text(payload, "after") or _text(payload, "checkout_sha")
        return Push(
            "gitlab",
            _gitlab_repository(_get(payload, "project")),
            _branch(str(_get(payload, "ref"))),
            after,
            _text(payload, "user_username") or _text(payload, "user_name"),
            deleted=after in ("", NO_COMMIT),
            logins=_logins("gitlab", _text(payload, "user_username")),
        )
    if kind == "Merge Request Hook":
        attrs = _get(payload, "object_attributes")
        raw = _text(attrs, "action")
        action = _GITLAB_ACTIONS.get(raw, "other")
        if raw == "update" and not attrs.get("oldrev"):
            action = "other"  # a title or label edit: no new commits
        return PullRequest(
            "gitlab",
            _gitlab_repository(_get(payload, "project")),
            int(_get(attrs, "iid")),
            action,
            raw,
            str(_get(attrs, "last_commit", "id")),
            _text(attrs, "source_branch"),
            _gitlab_fork(attrs),
            _text(attrs, "title"),
            _text(payload, "user", "username"),
            merged=raw == "merge",
        )
    block = payload.get("project")
    return Other("gitlab", kind or "unknown", _gitlab_repository(block) if block else None)
