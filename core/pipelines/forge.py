"""Telling a pull request where its preview is: one comment through the forge's API.

The request is built as data (``comment_request``) and sent by ``post_comment`` with a
timeout; a failure is one ``PipelineError`` line with the token masked.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import aiohttp

from core.config import PipelinesConfig
from core.pipelines import PipelineError
from core.pipelines.events import PullRequest
from core.secrets import Masker

GITHUB_API = "https://api.github.com"
TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class CommentRequest:
    url: str
    headers: dict[str, str]
    body: dict[str, str]


def api_url(config: PipelinesConfig, pull: PullRequest) -> str:
    """shipbot.yml's ``pipelines.forges.<forge>.api_url``, else GitHub's public API, or the
    GitLab/Gitea API on the repository's own host."""
    configured = config.forges.get(pull.forge)  # type: ignore[call-overload]
    if configured is not None:
        return configured.api_url.rstrip("/")
    if pull.forge == "github":
        return GITHUB_API
    parts = urlsplit(pull.repository.web_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise PipelineError(
            f"no API address for {pull.forge}: set pipelines.forges.{pull.forge}.api_url "
            "in shipbot.yml"
        )
    suffix = "/api/v4" if pull.forge == "gitlab" else "/api/v1"
    return f"{parts.scheme}://{parts.netloc}{suffix}"


def comment_request(api: str, pull: PullRequest, token: str, text: str) -> CommentRequest:
    if pull.forge == "gitlab":
        project = quote(pull.repository.project_id or pull.repository.name, safe="")
        return CommentRequest(
            f"{api}/projects/{project}/merge_requests/{pull.number}/notes",
            {"PRIVATE-TOKEN": token},
            {"body": text},
        )
    scheme = "Bearer" if pull.forge == "github" else "token"
    headers = {"Authorization": f"{scheme} {token}", "Accept": "application/json"}
    if pull.forge == "github":
        headers["Accept"] = "application/vnd.github+json"
    return CommentRequest(
        f"{api}/repos/{pull.repository.name}/issues/{pull.number}/comments", headers, {"body": text}
    )


async def post_comment(request: CommentRequest, timeout: float = TIMEOUT_SECONDS) -> None:
    values = list(request.headers.values())
    masker = Masker([*values, *(value.split(" ", 1)[-1] for value in values)])
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.post(request.url, json=request.body, headers=request.headers) as response,
        ):
            if response.status >= 300:
                text = (await response.text())[:200]
                raise PipelineError(
                    masker(f"the forge refused the comment ({response.status}): {text}")
                )
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise PipelineError(masker(f"the forge could not be reached: {exc}")) from exc
