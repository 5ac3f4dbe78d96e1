"""Hostile app.yml and shipbot.yml cost milliseconds and kilobytes: a deployer of one app
pushes an alias bomb or a huge file to its registered branch; every command that reads it
is refused quickly, in a short reply and a short audit row."""

from __future__ import annotations

import json
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.livelog import KEPT_LINES, LIVE_LINES, LiveLog
from commands.dispatch import Dispatcher
from commands.replies import Failure
from core.bounded import MAX_NODES, expansion, load_yaml, quote
from core.config import load_config
from core.errors import CoreError
from tests.chat import failure, result, say
from tests.fast_plane import dispatcher, fake_swarm
from tests.test_sources import _make_origin

ADMIN = "console:root"
MAL = "console:mal"  # deployer of mine, and nothing else
APP_YML = "name: mine\nimage: mine:1\n"
SMALL = 4096
MB = 2**20


def bomb(levels: int) -> str:
    """app.yml whose ``replicas`` (a number) is a list standing for 9**(levels+1) strings,
    written in well under a kilobyte."""
    rows = ["  - &a0 [" + ", ".join(["lol"] * 9) + "]"]
    for level in range(1, levels + 1):
        rows.append(f"  - &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]")
    return "name: mine\nimage: mine:1\nreplicas:\n" + "\n".join(rows) + "\n"


@pytest.fixture
def plane(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    origin = _make_origin(tmp_path)
    origin.commit({"app.yml": APP_YML})
    bot = dispatcher(home, fake_swarm("mine:1"), [ADMIN])
    yield bot, origin
    bot.close()


async def measured(bot: Dispatcher, text: str) -> tuple[Failure, float, int]:
    """The command's failure, its time and the peak of memory Python allocated for it."""
    tracemalloc.start()
    try:
        started = time.monotonic()
        replies = await say(bot, text, MAL)
        took = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return failure(replies), took, peak


async def test_alias_bombs_and_a_huge_app_yml_are_refused_cheaply(plane):
    bot, origin = plane
    assert result(await say(bot, f"apps add mine --git {origin.bare} --ref main", ADMIN)).ok
    assert result(await say(bot, f"grant {MAL} deployer --app mine", ADMIN)).ok
    huge = APP_YML + "env:\n" + "".join(f"  K{i}: {'v' * 90}\n" for i in range(110_000))
    cases = {f"{n} levels": bomb(n) for n in (5, 7, 9)} | {"10 MB": huge}
    assert len(bomb(9)) < 1000 and len(huge) > 10 * 10**6
    for name, text in cases.items():
        origin.commit({"app.yml": text})
        for command in ("deploy mine --dry-run", "deploy mine"):
            refused, took, peak = await measured(bot, command)
            print(f"{name}, {command}: {took * 1000:.0f} ms, peak {peak / MB:.1f} MB")
            expected = "aliases expand to more than" if "levels" in name else "over the 256 KB"
            assert expected in refused.message and "nothing was read" in refused.message
            assert len(refused.message.encode()) < SMALL, (name, command)
            row = bot.engine.store.audit_log("mine", limit=1)[0]  # a dry run changes nothing
            if command == "deploy mine":
                assert (row["command"], row["result"]) == (command, "failed")
                assert len(json.dumps(row).encode()) < SMALL, (name, command)
            assert peak < 20 * MB, (name, command, peak)
            # the first command after the push fetches it: 10 MB through git takes its time
            fetching = name == "10 MB" and command.endswith("--dry-run")
            assert took < (5.0 if fetching else 1.0), (name, command, took)
    assert bot.engine.store.releases("mine", "production") == []


async def test_a_small_bomb_under_a_wrong_key_is_quoted_short(plane):
    """Three levels pass the alias budget; the value pydantic refuses is quoted cut short."""
    bot, origin = plane
    assert result(await say(bot, f"apps add mine --git {origin.bare} --ref main", ADMIN)).ok
    assert result(await say(bot, f"grant {MAL} deployer --app mine", ADMIN)).ok
    origin.commit({"app.yml": bomb(3)})
    for command in ("deploy mine --dry-run", "deploy mine"):
        refused = failure(await say(bot, command, MAL))
        assert "replicas: expected a whole number, got [['lol', 'lol'," in refused.message
        assert refused.message.endswith("…") and len(refused.message) < 400
    row = bot.engine.store.audit_log("mine", limit=1)[0]
    assert (row["result"], row["detail"]) == ("failed", refused.message)


def test_expansion_counts_aliases_and_refuses_self_reference():
    assert expansion(yaml.compose("[a, [b, c]]"), MAX_NODES) == 5
    assert expansion(yaml.compose("x: &a [1, 2]\ny: [*a, *a]"), MAX_NODES) == 13
    assert expansion(yaml.compose(bomb(9)), MAX_NODES) == MAX_NODES + 1
    with pytest.raises(CoreError, match="refer to themselves"):
        load_yaml("a: &a [*a]\n", "app.yml")
    assert load_yaml("x: &a [1, 2]\ny: *a\n", "app.yml") == {"x": [1, 2], "y": [1, 2]}
    assert load_yaml("", "app.yml") is None
    assert quote("x" * 10_000) == "'" + "x" * 57 + "..." + "x" * 58 + "'"
    deep = [["y" * 300] * 9] * 9
    assert quote(deep).startswith("[['yyyy") and len(quote(deep)) == 200


def test_a_hostile_shipbot_yml_is_refused_with_the_cap(tmp_path: Path):
    (tmp_path / "shipbot.yml").write_text("admins: " + bomb(7).split("replicas:")[1])
    with pytest.raises(CoreError, match="aliases expand to more than 50,000"):
        load_config(tmp_path)
    (tmp_path / "shipbot.yml").write_text("admins: [console:ops]\n# " + "x" * 300_000 + "\n")
    with pytest.raises(CoreError, match="over the 256 KB a config file may have"):
        load_config(tmp_path)
    (tmp_path / "shipbot.yml").write_text(f"admins: ['{'y' * 5000}']\n")
    with pytest.raises(CoreError) as refused:
        load_config(tmp_path)
    assert str(refused.value).endswith("…") and len(str(refused.value)) < 600


class RecordedLog(LiveLog):
    """The live log's calls, as a chat adapter would make them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        super().__init__("deploy mine", interval=0)

    async def post(self, lines: list[str]) -> None:
        self.calls.append(("post", lines))

    async def edit(self, lines: list[str]) -> None:
        self.calls.append(("edit", lines))

    async def upload(self, filename: str, data: bytes, comment: str) -> None:
        self.calls.append(("upload", (filename, len(data.splitlines()), comment)))


async def test_a_live_log_of_500k_lines_keeps_its_end():
    live = RecordedLog()
    for number in range(500_000):
        live.add(f"line {number}")
    await live.close()
    assert len(live.lines) == KEPT_LINES
    assert live.calls[-2][1][-1] == "line 499999" and len(live.calls[-2][1]) == LIVE_LINES
    assert live.calls[-1] == (
        "upload",
        ("deploy-mine.log", KEPT_LINES, f"the last {KEPT_LINES} lines of the log: 500000 lines"),
    )
