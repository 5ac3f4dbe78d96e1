"""Every chat command, by family; importing the package registers them all."""

from commands.catalog.access import Audit, GrantRole, Grants, RevokeRole, Unlock, Whoami
from commands.catalog.apps import AppsAdd, AppsList, AppsRemove
from commands.catalog.backups import BackupList, Restore
from commands.catalog.certs import Certs
from commands.catalog.context import Context
from commands.catalog.data import DbAttach, DbCreate, DbDetach, DbList, DbRemove, DbStatus
from commands.catalog.decisions import Approve, Reject
from commands.catalog.deploys import Deploy, Releases, Rollback
from commands.catalog.dns import DnsList, DnsSync
from commands.catalog.domains import DomainGrant, DomainRevoke, Domains
from commands.catalog.edge import ProxySetup, ProxyStatus
from commands.catalog.help import Help
from commands.catalog.jobs import Run
from commands.catalog.links import LinkGrant, LinkList, LinkRevoke
from commands.catalog.outbox import Notifications, Outbox, OutboxRetry
from commands.catalog.people import People, PeopleLink, PeopleUnlink
from commands.catalog.pipelines import (
    PreviewClose,
    PreviewDeploy,
    PreviewList,
    WebhookSecret,
    WebhookToken,
)
from commands.catalog.policy import PolicyAccept, PolicyDiff, PolicyShow
from commands.catalog.reports import BackupReport, BackupRun, BackupVerify
from commands.catalog.running import Logs, Restart, Scale, Status
from commands.catalog.servers import (
    ServerAdd,
    ServerCheck,
    ServerList,
    ServerRemove,
    ServerTrust,
    SshKey,
)
from commands.catalog.variables import EnvList, EnvSet, EnvUnset, SecretSet
from commands.catalog.volumes import VolumeBackup, VolumeBackups, VolumeRestore

__all__ = [
    "Approve",
    "AppsAdd",
    "AppsList",
    "AppsRemove",
    "Audit",
    "BackupList",
    "BackupReport",
    "BackupRun",
    "BackupVerify",
    "Certs",
    "Context",
    "DbAttach",
    "DbCreate",
    "DbDetach",
    "DbList",
    "DbRemove",
    "DbStatus",
    "Deploy",
    "DnsList",
    "DnsSync",
    "DomainGrant",
    "DomainRevoke",
    "Domains",
    "EnvList",
    "EnvSet",
    "EnvUnset",
    "GrantRole",
    "Grants",
    "Help",
    "LinkGrant",
    "LinkList",
    "LinkRevoke",
    "Logs",
    "Notifications",
    "Outbox",
    "People",
    "PeopleLink",
    "PeopleUnlink",
    "OutboxRetry",
    "ProxySetup",
    "ProxyStatus",
    "Reject",
    "Releases",
    "Restart",
    "Restore",
    "RevokeRole",
    "Rollback",
    "Scale",
    "SecretSet",
    "Status",
    "Unlock",
    "Whoami",
    "PreviewClose",
    "PreviewDeploy",
    "PreviewList",
    "WebhookSecret",
    "WebhookToken",
    "VolumeBackup",
    "VolumeBackups",
    "VolumeRestore",
    "ServerAdd",
    "ServerCheck",
    "ServerList",
    "ServerRemove",
    "ServerTrust",
    "SshKey",
    "Run",
    "PolicyAccept",
    "PolicyDiff",
    "PolicyShow",
]
