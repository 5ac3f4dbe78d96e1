"""What the README tells a newcomer holds: its config examples load with the real loader and
document a private or staging ACME CA and the age identity; its console transcripts parse
into the commands `tests/test_readme_session_docker.py` replays, and the comparison there
is exact but for the README's named placeholders."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from core.config import BackupsConfig, load_config
from tests.readme_session import README, Exchange, matches, normalised, transcripts


def yaml_block(first_key: str) -> str:
    for block in re.findall(r"```yaml\n(.*?)```", README.read_text(), re.S):
        if block.startswith(f"{first_key}:"):
            return block
    raise AssertionError(f"the README has no yaml block that starts with {first_key}:")


def test_the_shipbot_yml_example_loads_and_names_another_acme_ca(tmp_path: Path):
    (tmp_path / "shipbot.yml").write_text(yaml_block("admins"))
    acme = load_config(tmp_path).edge.acme
    assert acme.ca_server == "https://acme-v02.api.letsencrypt.org/directory"
    assert acme.ca_certificates is None
    text = README.read_text()
    assert "edge.acme.ca_server" in text and "docker config create acme-root root.pem" in text


def test_the_backups_example_names_the_age_identity_variable():
    backups = BackupsConfig(**yaml.safe_load(yaml_block("backups"))["backups"])
    assert backups.age_identity_env == "SHIPBOT_AGE_IDENTITY" and backups.age_recipients == []
    assert "`SHIPBOT_AGE_IDENTITY` by default: the secret key `age-keygen` printed" in " ".join(
        README.read_text().split("\n")
    )


def test_the_demo_session_is_the_commands_the_replay_types():
    session, cleanup = [t for t in transcripts() if "hello" in t[0].command]
    assert [(e.command, e.direction) for e in session] == [
        ("deploy hello", ""),
        ("status", ""),
        ("deploy hello", "after breaking the Dockerfile's port"),
        ("releases hello", ""),
    ]
    assert [e.command for e in cleanup] == ["apps remove hello"]
    assert session[1].shown[3] == "│ hello │ production │ 1       │ 2/2 healthy │        │"


def test_a_transcript_block_parses_into_exchanges():
    text = "x\n```text\n$ start\nshipbot> deploy a   # after b\n→ one\nshipbot> status\n```\n"
    assert transcripts(text) == [
        [Exchange("deploy a", ("→ one",), "after b"), Exchange("status", (), "")]
    ]


def test_only_names_times_and_durations_are_normalised():
    printed = "│ hzz01 │ 12-07 18:59:03 │\n   duration 2.5s, 1m02s, 340ms  \nrelease 12 of 3 tasks"
    assert normalised(printed, {"hzz01": "hello"}) == [
        "│ hello │ <when> │",
        "   duration <time>, <time>, <time>",
        "release 12 of 3 tasks",
    ]


def test_a_placeholder_line_stands_for_one_or_more_lines_of_its_kind():
    shown = ("→ building", "│ Step 1/5", "│ …", "│ Successfully tagged x", "→ …", "✅ live")
    built = ["→ building", "│ Step 1/5", "│ a", "│ b", "│ Successfully tagged x"]
    assert matches(shown, [*built, "→ 0/2 up", "→ 2/2 up", "✅ live"])
    assert matches(shown, [*built, "→ 2/2 up", "✅ live"])
    assert not matches(shown, [*built, "✅ live"])  # at least one progress line
    assert not matches(shown, ["→ building", "│ Step 1/5", "│ Successfully tagged x"])
    assert not matches(shown, [*built, "→ 2/2 up", "✅ live", "extra"])
    assert not matches(("✅ live",), ["❌ failed"])
