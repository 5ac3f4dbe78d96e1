"""The catalog's table of commands (commands/catalog/__init__.py) is what its modules
register, and a command's module loads when one of its commands is first looked up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from commands.catalog import COMMANDS
from commands.catalog.families import FAMILIES
from commands.registry import DECLARED, REGISTRY, load_all

ROOT = Path(__file__).resolve().parent.parent


def test_the_table_names_every_command_of_every_module_in_its_order():
    load_all()
    registered: dict[str, list[str]] = {}
    for name, spec in REGISTRY.items():
        module = spec.request.__module__
        if module.startswith("commands.catalog."):
            registered.setdefault(module.removeprefix("commands.catalog."), []).append(name)
    assert {module: list(names) for module, names in COMMANDS.items()} == registered
    assert {
        name: f"commands.catalog.{module}" for module, names in COMMANDS.items() for name in names
    } == DECLARED


def test_every_module_of_the_table_is_in_one_help_family():
    for module in COMMANDS:
        assert len([f for f in FAMILIES if module in f.modules]) == 1, module


PROBE = """
import json, sys
from commands.grammar import UsageError, parse
def families():
    return sorted(m for m in sys.modules if m.startswith("commands.catalog.") and m not in (
        "commands.catalog.context", "commands.catalog.families"))
seen = [families()]
try:
    parse("deplo hello")
except UsageError as exc:
    seen.append(str(exc))
seen.append(families())
parse("whoami")
seen.append(families())
parse("deploy hello --env staging")
seen.append(families())
print(json.dumps(seen))
"""


def test_a_family_loads_when_one_of_its_commands_is_first_parsed():
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    before, unknown, after_typo, after_whoami, after_deploy = json.loads(done.stdout)
    assert before == after_typo == []  # a typo is answered from the names alone
    assert (
        unknown == "unknown command 'deplo' (did you mean deploy?): type `help` to see the commands"
    )
    assert after_whoami == ["commands.catalog.access"]
    assert "commands.catalog.deploys" in after_deploy
    assert "commands.catalog.servers" not in after_deploy
