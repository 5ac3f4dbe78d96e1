"""A migrated state file made once per test process and copied for each new store: a fresh
store's migrations (every room's, 35 ms of CPU) ran hundreds of times per run for the same
result. The copy is what migrating gives, but for its own plane id, so two homes in one test
are still two control planes. A file that exists (an old schema a test wrote, a store another
process opened) is opened and migrated as it always is."""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

from core.store import DB_FILE, Store, shipbot_home

_ORIGINAL_INIT = Store.__init__


def make(folder: Path) -> Path:
    """The migrated file, closed (its WAL checkpointed into it)."""
    template = folder / "template.db"
    store = Store.__new__(Store)
    _ORIGINAL_INIT(store, template)
    store.close()
    return template


def _place(template: Path, path: Path) -> None:
    """Copy ``template`` to ``path`` if nothing is there yet, atomically: a link of a full
    copy, so a process opening ``path`` meanwhile sees no file or the whole one."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # as Connection makes it
    fd, staged = tempfile.mkstemp(dir=path.parent, prefix=".template-")
    try:
        with os.fdopen(fd, "wb") as out, template.open("rb") as source:
            out.write(source.read())
        with contextlib.closing(sqlite3.connect(staged)) as db, db:
            db.execute("UPDATE identity SET value = ? WHERE key = 'plane'", [secrets.token_hex(8)])
        os.chmod(staged, 0o600)
        with contextlib.suppress(FileExistsError):
            os.link(staged, path)
    finally:
        os.unlink(staged)


@contextlib.contextmanager
def copied_for_new_stores(folder: Path) -> Iterator[None]:
    """While the block runs, ``Store(path)`` on a path with no file starts from the copy."""
    template = make(folder)

    def init(self: Store, path: Path | None = None, *args, **kwargs) -> None:
        target = Path(path) if path is not None else shipbot_home() / DB_FILE
        if not target.exists():
            _place(template, target)
        _ORIGINAL_INIT(self, target, *args, **kwargs)

    Store.__init__ = init  # type: ignore[method-assign]
    try:
        yield
    finally:
        Store.__init__ = _ORIGINAL_INIT  # type: ignore[method-assign]
