"""The shapes of names every layer checks: apps, environments, keys, users, refs, roles.

One definition each, so the grammar, app.yml, shipbot.yml and git sources cannot drift.
"""

from __future__ import annotations

import re

APP_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,40}$")
ENV_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,20}$")
# Environment variable and secret names.
KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# ``platform:id`` with the platform's immutable id, never a display name.
USER_RE = re.compile(r"^[a-z]+:[A-Za-z0-9._@-]{1,80}$")
# A git ref or image tag, passed to git as one argv item; never option-like.
REF_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")
ROLE_NAMES = ("viewer", "deployer", "admin")


def is_ref(value: str) -> bool:
    return bool(REF_RE.match(value)) and ".." not in value


# What shipbot writes on the services and networks it owns, so it finds them again.
NETWORK = "shipbot"
LABEL_APP = "shipbot.app"
LABEL_ENV = "shipbot.env"
LABEL_RELEASE = "shipbot.release"
LABEL_MANAGED = "shipbot.managed"
