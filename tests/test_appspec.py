"""app.yml: valid documents resolve per environment; every error names the exact field."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.appspec import deep_merge, load_app_config, parse_app_config
from core.errors import AppSpecError

EXAMPLE = """\
name: hello
build: .
port: 8080
replicas: 2
healthcheck: {cmd: ["wget", "-qO-", "http://127.0.0.1:8080/"], interval: 2s, timeout: 2s,
  retries: 3, start_period: 2s}
env: {GREETING: hi, PORT: 8080, DEBUG: false}
environments:
  production: {replicas: 3}
"""


def test_example_resolves_per_environment():
    config = parse_app_config(EXAMPLE)
    assert config.name == "hello"
    assert config.environments == ["production"]
    assert config.base.replicas == 2
    assert config.for_env("production").replicas == 3
    assert config.for_env("staging") == config.base  # undeclared: the base as it is
    check = config.base.healthcheck
    assert (check.interval, check.timeout, check.retries, check.start_period) == (
        2_000_000_000,
        2_000_000_000,
        3,
        2_000_000_000,
    )
    assert check.test() == ["CMD", "wget", "-qO-", "http://127.0.0.1:8080/"]
    assert config.base.env == {"GREETING": "hi", "PORT": "8080", "DEBUG": "false"}
    assert config.base.build.context == "." and config.base.build.dockerfile == "Dockerfile"


def test_shell_healthcheck_and_resources():
    spec = parse_app_config(
        "name: a\nimage: a:1\nhealthcheck: {cmd: 'curl -f localhost || exit 1'}\n"
        "resources: {cpus: 0.5, memory: 256M}\n"
    ).base
    assert spec.healthcheck.test() == ["CMD-SHELL", "curl -f localhost || exit 1"]
    assert spec.resources.memory == 268_435_456 and spec.resources.cpus == 0.5


def test_approval_shorthand_and_defaults():
    config = parse_app_config(
        "name: a\nimage: a:1\nenvironments:\n  production: {approval: true}\n"
    )
    rule = config.for_env("production").approval
    assert (rule.required, rule.approvers, rule.expires) == (
        1,
        ["deployer", "admin"],
        30 * 60 * 1_000_000_000,
    )
    assert config.base.approval is None


BAD = [
    ("name: hello\nbuild: .\nreplicas: 0\n", "replicas: must be ≥ 1, got 0"),
    (
        "name: hello\nbuild: .\nenvironments:\n  production: {replicas: 0}\n",
        "environments.production.replicas: must be ≥ 1, got 0",
    ),
    ("name: hello\nbuild: .\nreplicass: 2\n", "replicass: unknown key"),
    ("name: hello\nbuild: {context: ., dockerfilex: D}\n", "build.dockerfilex: unknown key"),
    (
        "name: hello\nbuild: .\nimage: x\n",
        "(top level): set exactly one of 'build' (a folder to build) or 'image'",
    ),
    ("name: hello\n", "(top level): set exactly one of 'build' (a folder to build) or 'image'"),
    (
        "name: 'hello;rm -rf /'\nimage: x\n",
        "name: must start with a lowercase letter and hold only a-z, 0-9 and '-' (at most 41 "
        "characters), got 'hello;rm -rf /'",
    ),
    (
        "name: h\nimage: x\nhealthcheck: {cmd: [wget], interval: 2x}\n",
        "healthcheck.interval: expected a duration such as 2s, 500ms or 1m, got '2x'",
    ),
    (
        "name: h\nimage: x\nhealthcheck: {cmd: 5}\n",
        "healthcheck.cmd: expected a list of strings (argv) or a shell string, got 5",
    ),
    ("name: h\nimage: x\nport: abc\n", "port: expected a whole number, got 'abc'"),
    ("name: h\nimage: x\nport: 70000\n", "port: must be ≤ 65535, got 70000"),
    ("name: h\nimage: x\nenv: {'1BAD': x}\n", "env: '1BAD' is not a valid variable name"),
    ("name: h\nimage: x\nenv: {A: [1]}\n", "env.A: expected a string or number, got list"),
    (
        "name: h\nimage: x\nvolumes: [data]\n",
        "volumes: expected 'name:/path', '/host/path:/path' (':ro' optional), got 'data'",
    ),
    (
        "name: h\nimage: x\nenvironments: {staging: {name: other}}\n",
        "environments.staging.name: the name cannot be overridden",
    ),
    (
        "name: h\nimage: x\nenvironments: {Prod: {}}\n",
        "environments: environment name 'Prod' must match [a-z][a-z0-9-]{0,20}",
    ),
    (
        "name: h\nimage: x\nenvironments: {staging: {healthcheck: {retries: 0}}}\n",
        "environments.staging.healthcheck.cmd: required; "
        "environments.staging.healthcheck.retries: must be ≥ 1, got 0",
    ),
    (
        "name: h\nimage: x\nresources: {memory: 12Q}\n",
        "resources.memory: expected a size such as 256M or 1G, got '12Q'",
    ),
    (
        "name: h\nimage: x\napproval: {approvers: [owner]}\n",
        "approval.approvers: 'owner' is neither a role (viewer, deployer, admin) nor a platform:id",
    ),
    (
        "name: [\n",
        "line 2, column 1: not valid YAML (expected the node content, but found '<stream end>')",
    ),
    ("- 1\n", "expected a mapping of keys such as 'name' and 'build'"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_documents_name_the_field(text: str, message: str):
    with pytest.raises(AppSpecError) as caught:
        parse_app_config(text, source="app.yml")
    assert str(caught.value) in (f"app.yml: {message}", f"app.yml {message}")


def test_deep_merge_merges_maps_replaces_the_rest():
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 1}
    merged = deep_merge(base, {"a": {"y": [3]}, "c": 2})
    assert merged == {"a": {"x": 1, "y": [3]}, "b": 1, "c": 2}
    assert base == {"a": {"x": 1, "y": [1, 2]}, "b": 1}


def test_missing_file(tmp_path: Path):
    with pytest.raises(AppSpecError, match=r"^no app\.yml in .*: add one"):
        load_app_config(tmp_path)


def test_shipbots_own_app_yml_is_valid():
    spec = load_app_config(Path(__file__).resolve().parent.parent).base
    assert (spec.name, spec.replicas, spec.command) == ("shipbot", 1, ["serve"])
    assert spec.volumes == ["data:/data", "/var/run/docker.sock:/var/run/docker.sock"]
