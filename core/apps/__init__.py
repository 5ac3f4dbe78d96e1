"""The registry of apps: where each one's code and app.yml come from."""

from __future__ import annotations

import asyncio
import difflib
import functools
from pathlib import Path

from core.apps import sources
from core.apps.git_credentials import split_credentials
from core.appspec import AppConfig, load_app_config, parse_app_config
from core.bounded import check_size
from core.errors import CoreError, SourceError, UnknownApp
from core.names import APP_NAME_RE
from core.plane import Plane
from core.store import App, Store


def did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def get_app(store: Store, name: str) -> App:
    app = store.get_app(name)
    if app is None:
        names = [a.name for a in store.list_apps()]
        raise UnknownApp(
            f"no app named {name!r} (registered: {', '.join(names) or 'none yet'})"
            f"{did_you_mean(name, names)}; register it with `apps add {name} --path DIR`"
        )
    return app


def repo_folder(plane: Plane, app: App | str) -> Path:
    return plane.home / "sources" / (app if isinstance(app, str) else app.name)


def credential(plane: Plane, app: App) -> str | None:
    return plane.vault.decrypt(app.credential) if app.credential else None


def check_name(config: AppConfig, app: str, where: str) -> None:
    """app.yml may not name another app: the service it would replace is that app's."""
    if config.name != app:
        raise CoreError(
            f"{where} names the app {config.name!r}, not {app!r}: the name in app.yml must be "
            "the registered one at every ref, so nothing was changed"
        )


def config_at(repo: Path, commit: str, app: str) -> AppConfig:
    """app.yml in a clone at ``commit``, which must name ``app``."""
    where = f"app.yml at {commit[:12]}"
    try:
        sources.check_ref(commit)
        size = sources.run(sources.git_command("cat-file", "-s", f"{commit}:app.yml", cwd=repo))
        check_size(int(size), where)  # before git hands the whole blob over
        text = sources.read_file(repo, commit, "app.yml")
    except SourceError as exc:
        raise SourceError(f"{app} has no readable app.yml at {commit[:12]}: {exc}") from exc
    config = parse_app_config(text, source=where)
    check_name(config, app, where)
    return config


def config_in(folder: Path, app: str) -> AppConfig:
    """app.yml in a folder app's folder, which must name ``app``."""
    if not folder.is_dir():
        raise SourceError(f"the source folder of {app} is gone: {folder}")
    config = load_app_config(folder)
    check_name(config, app, f"{folder}/app.yml")
    return config


async def read_config(
    plane: Plane, app: App, ref: str | None = None
) -> tuple[AppConfig, str | None]:
    """app.yml of ``app`` at ``ref`` (git apps; the registered ref by default), and the commit."""
    if app.source_kind != "git":
        return await asyncio.to_thread(config_in, Path(app.source), app.name), None
    repo, token = repo_folder(plane, app), credential(plane, app)
    commit = await asyncio.to_thread(sources.resolve, repo, ref or app.ref or "HEAD", token)
    return await asyncio.to_thread(config_at, repo, commit, app.name), commit


async def add_app(
    plane: Plane,
    name: str,
    *,
    user: str,
    path: str | None = None,
    git: str | None = None,
    ref: str | None = None,
) -> tuple[App, AppConfig, str | None]:
    """Register an app: its row, its app.yml and the commit that was read at (git apps); a
    git app's clone replaces an earlier one only once its app.yml at ``ref`` is valid and
    names the app. Its policy is accepted by the caller (``core.policy.accept.first``)."""
    if not APP_NAME_RE.match(name):
        raise CoreError(f"{name!r} is not a valid app name: use a-z, 0-9 and '-'")
    token: str | None = None
    if git is not None:
        url, token = split_credentials(git)
        accepted: list[tuple[AppConfig, str]] = []

        def accept(clone: Path, commit: str) -> None:
            accepted.append((config_at(clone, commit, name), commit))

        await asyncio.to_thread(
            functools.partial(sources.clone, accept=accept),
            url,
            repo_folder(plane, name),
            ref,
            token,
        )
        (config, commit), kind, source = accepted[0], "git", url
    else:
        folder = Path(path or ".").expanduser().resolve()
        if not folder.is_dir():
            raise SourceError(f"{folder} is not a folder")
        config = await asyncio.to_thread(config_in, folder, name)
        kind, source, commit = "path", str(folder), None
    app = App(
        name=name,
        source_kind=kind,
        source=source,
        ref=ref,
        created_by=user,
        created_at=plane.clock.time(),
        credential=plane.vault.encrypt(token) if token else None,
    )
    await plane.db.in_thread(lambda: plane.store.add_app(app))
    return app, config, commit
