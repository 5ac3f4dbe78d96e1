"""Every chat command, by family module. ``COMMANDS`` declares each command's name to the
grammar, so a command is found by name at once; its module (and the libraries it needs) is
imported only when one of its commands is first looked up. ``load_all`` (commands/registry.py)
imports them all (help, Discord's tree, completion); tests/test_catalog_table.py checks that
this table is what the modules register."""

from __future__ import annotations

import importlib
from typing import Any

from commands.catalog.context import Context
from commands.registry import declare

# module → the commands it registers, in the order they were always registered
COMMANDS: dict[str, tuple[str, ...]] = {
    "access": ("whoami", "grant", "revoke", "grants", "unlock", "audit"),
    "policy": ("policy", "policy diff", "policy accept"),
    "apps": ("apps add", "apps list", "apps remove"),
    "data": ("db create", "db list", "db status", "db attach", "db detach", "db remove"),
    "backups": ("backup list", "restore", "backup accept"),
    "certs": ("certs",),
    "decisions": ("approve", "reject"),
    "dns": ("dns list", "dns sync"),
    "deploys": ("deploy", "rollback", "releases"),
    "domains": ("domain grant", "domain revoke", "domains"),
    "edge": ("proxy setup", "proxy status"),
    "help": ("help",),
    "jobs": ("run",),
    "links": ("link grant", "link revoke", "link list"),
    "outbox": ("outbox", "outbox retry", "notifications"),
    "people": ("people link", "people unlink", "people"),
    "pipelines": ("webhook secret", "webhook token", "previews", "preview deploy", "preview close"),
    "reports": ("backup run", "backup verify", "backup report"),
    "running": ("status", "logs", "scale", "restart"),
    "servers": (
        "ssh-key",
        "server add",
        "server list",
        "server check",
        "server trust",
        "server address",
        "server remove",
    ),
    "variables": ("env set", "env unset", "env list", "secret set"),
    "volumes": ("volume backup", "volume backups", "volume restore"),
}
# request class → its module, for ``catalog.Deploy`` and the like
_CLASSES: dict[str, str] = {
    "Audit": "access",
    "GrantRole": "access",
    "Grants": "access",
    "RevokeRole": "access",
    "Unlock": "access",
    "Whoami": "access",
    "AppsAdd": "apps",
    "AppsList": "apps",
    "AppsRemove": "apps",
    "BackupList": "backups",
    "Restore": "backups",
    "Certs": "certs",
    "DbAttach": "data",
    "DbCreate": "data",
    "DbDetach": "data",
    "DbList": "data",
    "DbRemove": "data",
    "DbStatus": "data",
    "Approve": "decisions",
    "Reject": "decisions",
    "Deploy": "deploys",
    "Releases": "deploys",
    "Rollback": "deploys",
    "DnsList": "dns",
    "DnsSync": "dns",
    "DomainGrant": "domains",
    "DomainRevoke": "domains",
    "Domains": "domains",
    "ProxySetup": "edge",
    "ProxyStatus": "edge",
    "Help": "help",
    "Run": "jobs",
    "LinkGrant": "links",
    "LinkList": "links",
    "LinkRevoke": "links",
    "Notifications": "outbox",
    "Outbox": "outbox",
    "OutboxRetry": "outbox",
    "People": "people",
    "PeopleLink": "people",
    "PeopleUnlink": "people",
    "PreviewClose": "pipelines",
    "PreviewDeploy": "pipelines",
    "PreviewList": "pipelines",
    "WebhookSecret": "pipelines",
    "WebhookToken": "pipelines",
    "PolicyAccept": "policy",
    "PolicyDiff": "policy",
    "PolicyShow": "policy",
    "BackupReport": "reports",
    "BackupRun": "reports",
    "BackupVerify": "reports",
    "Logs": "running",
    "Restart": "running",
    "Scale": "running",
    "Status": "running",
    "ServerAdd": "servers",
    "ServerAddress": "servers",
    "ServerCheck": "servers",
    "ServerList": "servers",
    "ServerRemove": "servers",
    "ServerTrust": "servers",
    "SshKey": "servers",
    "EnvList": "variables",
    "EnvSet": "variables",
    "EnvUnset": "variables",
    "SecretSet": "variables",
    "VolumeBackup": "volumes",
    "VolumeBackups": "volumes",
    "VolumeRestore": "volumes",
}
for _module, _names in COMMANDS.items():
    declare(f"commands.catalog.{_module}", _names)


def __getattr__(name: str) -> Any:
    module = _CLASSES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"commands.catalog.{module}"), name)


__all__ = ["COMMANDS", "Context", *_CLASSES]
