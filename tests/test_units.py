"""Small pure pieces: durations, exit codes, secrets vault and masking, reply masking."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from commands.replies import Failure, Result, Table, exit_code, mask
from core.durations import format_duration, parse_duration_ns
from core.secrets import MASK, Masker, SecretError, Vault


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2s", 2 * 10**9),
        ("500ms", 5 * 10**8),
        ("1m30s", 90 * 10**9),
        ("1h", 3600 * 10**9),
        (3, 3 * 10**9),
        (0.5, 5 * 10**8),
    ],
)
def test_durations(text, ns):
    assert parse_duration_ns(text) == ns


@pytest.mark.parametrize("bad", ["", "2x", "s", "1s2", -1, True])
def test_bad_durations(bad):
    with pytest.raises(ValueError):
        parse_duration_ns(bad)


def test_format_duration():
    assert [format_duration(s) for s in (0.85, 12.44, 185)] == ["850ms", "12.4s", "3m05s"]


def test_exit_codes():
    assert exit_code([Result(True, "ok")]) == 0
    assert exit_code([Failure("x", "usage")]) == 2
    assert exit_code([Failure("x")]) == 1
    assert exit_code([Result(False, "no")]) == 1


def test_vault_key_file_is_private_and_stable(tmp_path: Path):
    vault = Vault.open(tmp_path)
    token = vault.encrypt("hunter22")
    assert "hunter22" not in token
    assert stat.S_IMODE((tmp_path / "secret.key").stat().st_mode) == 0o600
    assert Vault.open(tmp_path).decrypt(token) == "hunter22"
    (tmp_path / "other").mkdir()
    with pytest.raises(SecretError, match="cannot be decrypted with this key"):
        Vault.open(tmp_path / "other").decrypt(token)


def test_masking_every_text_field():
    masker = Masker(["s3cret-token", "ab"])  # too short to mask safely: left alone
    reply = Table(("k", "v"), (("TOKEN", "s3cret-token"),), title="about ab")
    assert mask(reply, masker) == Table(("k", "v"), (("TOKEN", MASK),), title="about ab")
    result = Result(
        False,
        "failed with s3cret-token",
        ("x s3cret-token",),
        {"f": "s3cret-token"},
        ("log s3cret-token.", "s3cret-tokens is another word"),
    )
    assert mask(result, masker) == Result(
        False,
        f"failed with {MASK}",
        (f"x {MASK}",),
        {"f": MASK},
        (f"log {MASK}.", "s3cret-tokens is another word"),
    )


def test_masking_whole_values_only_and_url_credentials():
    masker = Masker(["production-key-1", "prod"])
    assert masker("deploy to production with production-key-1") == (
        f"deploy to production with {MASK}"
    )
    assert masker("KEY=production-key-1;") == f"KEY={MASK};"
    # a token in any URL is masked without naming which secret it was
    assert masker("cloning https://bob:ghp_abc123@git.example.com/x.git") == (
        f"cloning https://{MASK}@git.example.com/x.git"
    )
