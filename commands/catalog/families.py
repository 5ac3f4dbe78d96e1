"""The families `help` groups the commands in: a key to type (`help data`), a title, and the
catalog modules whose commands belong to it. Every catalog module is in exactly one."""

from __future__ import annotations

from dataclasses import dataclass

from commands.grammar import CommandSpec


@dataclass(frozen=True)
class Family:
    key: str
    title: str
    modules: tuple[str, ...]


FAMILIES = (
    Family("deploys", "apps & deploys", ("apps", "deploys", "policy", "links")),
    Family("running", "running", ("running", "jobs")),
    Family("variables", "variables", ("variables",)),
    Family("access", "access & approvals", ("access", "help", "decisions", "people")),
    Family("edge", "edge & DNS", ("edge", "certs", "domains", "dns")),
    Family("data", "data & backups", ("data", "backups", "reports", "volumes")),
    Family("servers", "servers", ("servers",)),
    Family("pipelines", "pipelines", ("pipelines",)),
    Family("notifications", "notifications", ("outbox",)),
)
BY_KEY = {family.key: family for family in FAMILIES}


def family_of(spec: CommandSpec) -> Family:
    module = spec.request.__module__.rsplit(".", 1)[-1]
    for family in FAMILIES:
        if module in family.modules:
            return family
    raise LookupError(f"{spec.name} ({module}) is in no help family: add its module to one")
