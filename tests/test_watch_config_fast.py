"""shipbot.yml's guard window and check interval: seconds or a duration, and anything else
refused with an error that names the key and says what it should look like."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import ConfigError, load_config
from tests.test_cli import shipbot

EXPECTED = "expected a number of seconds (300) or a duration such as 5m, 90s or 1m30s"


def config(home: Path, alerts: str) -> Path:
    (home / "shipbot.yml").write_text(f"admins: [console:ops]\nalerts: {alerts}\n")
    return home


@pytest.mark.parametrize(("written", "seconds"), [("300", 300), ("5m", 300), ("1m30s", 90)])
def test_the_guard_window_takes_seconds_or_a_duration(tmp_path: Path, written: str, seconds: int):
    assert load_config(config(tmp_path, f"{{guard_seconds: {written}}}")).alerts.guard_seconds == (
        seconds
    )


@pytest.mark.parametrize(("written", "seconds"), [("0.5", 0.5), ("250ms", 0.25), ("2m", 120.0)])
def test_the_check_interval_takes_seconds_or_a_duration(
    tmp_path: Path, written: str, seconds: float
):
    assert load_config(config(tmp_path, f"{{check_seconds: {written}}}")).alerts.check_seconds == (
        seconds
    )


def test_a_guard_window_that_does_not_parse_names_its_key(tmp_path: Path):
    config(tmp_path, "{guard_seconds: 5 minutes}")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert str(caught.value) == (
        f"{tmp_path / 'shipbot.yml'}: alerts.guard_seconds: Value error, {EXPECTED}, "
        "got '5 minutes'"
    )


def test_a_check_interval_that_does_not_parse_names_its_key(tmp_path: Path):
    config(tmp_path, "{check_seconds: soon, guard_seconds: yes}")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert str(caught.value) == (
        f"{tmp_path / 'shipbot.yml'}: "
        f"alerts.check_seconds: Value error, {EXPECTED}, got 'soon'; "
        f"alerts.guard_seconds: Value error, {EXPECTED}, got True"
    )


def test_a_check_interval_of_zero_is_refused(tmp_path: Path):
    config(tmp_path, "{check_seconds: 0s}")
    with pytest.raises(ConfigError, match="alerts.check_seconds: Input should be greater than 0"):
        load_config(tmp_path)


def test_the_cli_says_it_in_one_line_without_a_traceback(tmp_path: Path):
    config(tmp_path, "{guard_seconds: a while}")
    done = shipbot("chat", "help", home=tmp_path)
    assert done.returncode == 1
    assert f"alerts.guard_seconds: Value error, {EXPECTED}, got 'a while'" in done.stderr + (
        done.stdout
    )
    assert "Traceback" not in done.stderr
