"""What `shipbot` imports before it answers: the start-up cost a person pays on every call.

Each case runs the real entry point in a fresh interpreter under ``python -X importtime``,
which lists every module the process imported, so a module-level import of a heavy
library anywhere on the path fails here rather than quietly slowing every command.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot import cli
from bot.self_deploy import HEARTBEAT

ROOT = Path(__file__).resolve().parent.parent
# What a chat command that touches no engine, bucket, server or chat platform never needs
HEAVY = (
    "slack_bolt",
    "slack_sdk",
    "discord",
    "aiohttp",
    "boto3",
    "botocore",
    "fabric",
    "paramiko",
    "invoke",
    "cloudflare",
    "apscheduler",
    "matplotlib",
    "httpx",
    "docker",
    "requests",
)
# What `chat whoami` never needs either, though other commands do: made lazy for it (the
# settings' library, app.yml's model, other families' modules and what they drive)
LAZY = (
    "typer",
    "pydantic_settings",
    "core.appspec",
    "core.apps",
    "core.deploy.resolve",
    "core.deploy.deploy",
    "core.data.databases",
    "core.data.volumes",
    "core.edge.operate",
    "core.watch.alerts",
    "pyrage",
)
SCRIPT = "import sys; from bot.cli import main; sys.argv[0] = 'shipbot'; main()"
# the same, writing every module loaded by the end (``import_module`` escapes -X importtime)
LISTED = (
    "import atexit, os, sys; "
    "atexit.register(lambda: open(os.environ['MODULES_OUT'], 'w').write('\\n'.join(sys.modules)));"
    " from bot.cli import main; sys.argv[0] = 'shipbot'; main()"
)
_IMPORTED = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)\s*$", re.M)


def imported(*args: str, home: Path) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``shipbot ARGS…`` under ``-X importtime`` as the installed script does (``from
    bot.cli import main``); the run and the modules it imported, with their packages."""
    env = {**os.environ, "SHIPBOT_HOME": str(home), "DOCKER_HOST": "unix:///nonexistent.sock"}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", SCRIPT, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    modules = set(_IMPORTED.findall(done.stderr))
    assert modules, done.stderr[-500:]  # the listing itself is there
    return done, {name.split(".")[0] for name in modules} | modules


def test_chat_whoami_loads_no_platform_cloud_or_engine_library(tmp_path: Path):
    (tmp_path / "shipbot.yml").write_text("admins: [console:ops]\n")
    done, modules = imported("chat", "whoami", "--as", "console:ops", home=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "you are console:ops" in done.stdout
    assert "commands.catalog" in modules  # the whole command set was there to answer
    assert sorted(modules.intersection(HEAVY)) == []


def test_chat_whoami_loads_its_family_alone_and_nothing_made_lazy(tmp_path: Path):
    (tmp_path / "shipbot.yml").write_text("admins: [console:ops]\n")
    out = tmp_path / "modules.txt"
    env = {
        **os.environ,
        "SHIPBOT_HOME": str(tmp_path),
        "DOCKER_HOST": "unix:///nonexistent.sock",
        "MODULES_OUT": str(out),
    }
    done = subprocess.run(
        [sys.executable, "-c", LISTED, "chat", "whoami", "--as", "console:ops"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "you are console:ops" in done.stdout
    modules = set(out.read_text().split("\n"))
    families = sorted(m for m in modules if m.startswith("commands.catalog."))
    assert families == ["commands.catalog.access", "commands.catalog.context"]
    assert sorted(modules.intersection((*LAZY, *HEAVY))) == []


def test_version_imports_nothing_of_shipbot_but_its_entry_point(tmp_path: Path):
    done, modules = imported("--version", home=tmp_path)
    assert (done.returncode, done.stdout) == (0, "shipbot 0.1.0\n")
    ours = sorted(m for m in modules if m.split(".")[0] in ("bot", "commands", "core", "rooms"))
    assert ours == ["bot", "bot.cli"]
    assert not modules.intersection(("typer", "pydantic", "yaml", "sqlite_utils", *HEAVY))


def test_health_answers_from_the_standard_library(tmp_path: Path):
    (tmp_path / HEARTBEAT).write_text(json.dumps({"pid": 1, "version": "0.1.0"}))
    done, modules = imported("health", home=tmp_path)
    assert (done.returncode, done.stderr.count("❌")) == (0, 0)
    assert done.stdout.startswith("✅ shipbot 0.1.0 serving (heartbeat ")
    ours = sorted(m for m in modules if m.split(".")[0] in ("bot", "commands", "core", "rooms"))
    assert ours == ["bot", "bot.cli", "bot.self_deploy"]
    assert not modules.intersection(("typer", "pydantic", "yaml", "sqlite_utils", *HEAVY))


def test_health_fails_on_an_old_heartbeat_with_the_exit_status_the_check_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    beat = tmp_path / HEARTBEAT
    beat.write_text(json.dumps({"pid": 1, "version": "0.1.0"}))
    old = time.time() - 100
    os.utime(beat, (old, old))
    monkeypatch.setenv("SHIPBOT_HOME", str(tmp_path))
    monkeypatch.setattr(sys, "argv", ["shipbot", "health", "--max-age", "30"])
    with pytest.raises(SystemExit) as stopped:
        cli.main()
    out = capsys.readouterr()
    assert (stopped.value.code, out.out) == (1, "")
    assert re.fullmatch(r"❌ the last heartbeat is 10\ds old \(limit 30s\)\n", out.err)
    monkeypatch.setattr(sys, "argv", ["shipbot", "health"])  # the default limit: 90 s
    with pytest.raises(SystemExit) as stopped:
        cli.main()
    assert stopped.value.code == 1
    assert "limit 90s" in capsys.readouterr().err


def test_health_leaves_a_spelling_it_does_not_know_to_typer():
    assert cli._health(["--max-age", "soon"]) is None
    assert cli._health(["--max-age=5"]) is None
    assert cli._health(["--verbose"]) is None


def test_the_vault_checks_its_key_at_once_and_loads_cryptography_on_first_use(tmp_path: Path):
    from cryptography.fernet import Fernet

    from core.secrets import SecretError, Vault

    for bad in (b"short", b"not base64 at all!!", b""):
        with pytest.raises(ValueError, match="Fernet key must be 32 url-safe base64"):
            Vault(bad)
    vault = Vault.open(tmp_path)  # generates secret.key, as Fernet.generate_key() would
    key = (tmp_path / "secret.key").read_bytes()
    assert Fernet(key).decrypt(vault.encrypt("s3cret").encode()) == b"s3cret"
    assert vault.decrypt(Fernet(key).encrypt(b"back").decode()) == "back"
    with pytest.raises(SecretError, match="cannot be decrypted with this key"):
        Vault(Fernet.generate_key()).decrypt(vault.encrypt("x"))


def test_the_local_engine_client_holds_back_the_sdks_ssh_adapter_until_a_server_needs_it():
    probe = """
import sys
import docker
from core.swarm.docker_api import DockerSwarm
print("paramiko" in sys.modules, hasattr(docker.transport, "SSHHTTPAdapter"))
from core.servers import docker_ssh
api = docker.APIClient(base_url="ssh://root@127.0.0.1:1", use_ssh_client=True, version="1.41")
print("paramiko" in sys.modules, type(api._custom_adapter).__name__)
api.close()
"""
    done = subprocess.run(
        [sys.executable, "-c", "import core.swarm" + probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["False False", "True SSHHTTPAdapter"]
