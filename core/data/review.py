"""What an approval of a database change is bound to, as a digest.

``db remove`` and ``restore`` over a live database wait for someone else's approval; what
is approved must be what runs. The digest covers the database as it was created (so one
removed and created again under its name is another) and, for a restore, the backup as
recorded (its object, checksum and whether retention has deleted it since).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

DATABASE_FACTS = ("name", "kind", "version", "image", "server", "created_at")
BACKUP_FACTS = ("id", "database", "kind", "key", "sha256", "size", "status", "deleted_at")


def digest(database: Mapping[str, Any] | None, backup: Mapping[str, Any] | None = None) -> str:
    """A short digest of the facts above; ``None`` stands for a database or backup that
    does not exist (which then matches nothing that was reviewed)."""
    facts = {
        "database": {k: database.get(k) for k in DATABASE_FACTS} if database else None,
        "backup": {k: backup.get(k) for k in BACKUP_FACTS} if backup else None,
    }
    text = json.dumps(facts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
