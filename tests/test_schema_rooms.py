"""The ``shipbot`` migrations, one module per room: HISTORY is every room's steps in
version order, and each step is declared by exactly one room."""

from __future__ import annotations

from types import ModuleType

import pytest

from core.store.migrations import HISTORY
from core.store.schema import MODULES, NEVER_USED, history, version, versions
from rooms.registry import ROOMS


def _module(name: str, *steps) -> ModuleType:
    module = ModuleType(name)
    module.STEPS = steps
    return module


def _step(name: str):
    def step(db) -> None:
        return None

    step.__name__ = name
    return step


def test_every_version_is_declared_by_exactly_one_room():
    numbers = [version(step) for step in HISTORY]
    declared: dict[int, list[str]] = {}
    for room in ROOMS:
        for number in room.migrations:
            declared.setdefault(number, []).append(room.name)
    assert {n: rooms for n, rooms in declared.items() if len(rooms) != 1} == {}
    assert sorted(declared) == numbers


def test_history_is_one_to_n_in_order_without_gaps_but_the_never_used():
    numbers = [version(step) for step in HISTORY]
    assert numbers == sorted(set(numbers))
    assert numbers == [n for n in range(1, numbers[-1] + 1) if n not in NEVER_USED]
    assert max(NEVER_USED) < numbers[-1]
    assert numbers[:3] == [1, 2, 3]  # the old user_version 1, 2 and 3


def test_each_room_declares_its_own_modules_steps():
    by_name = {room.name: room for room in ROOMS}
    for name, module in MODULES.items():
        assert by_name[name].migrations == versions(module)


def test_a_new_step_in_one_module_lands_at_its_number():
    later = _step("v24_toy")
    rooms = {
        "a": _module("a", _step("v2_two"), later),
        "b": _module("b", _step("v1_one"), _step("v3_three")),
    }
    assert [s.__name__ for s in history(rooms)] == ["v1_one", "v2_two", "v3_three", "v24_toy"]


def test_a_number_claimed_twice_is_refused():
    rooms = {"a": _module("a", _step("v1_one")), "b": _module("b", _step("v1_other"))}
    with pytest.raises(ValueError, match=r"used twice: \[1\]"):
        history(rooms)


def test_a_never_used_number_is_refused_with_the_next_free_one():
    rooms = {"a": _module("a", _step("v1_one"), _step("v15_late"), _step("v30_last"))}
    with pytest.raises(ValueError, match=r"\[15\] are retired; take 31"):
        history(rooms)


def test_a_step_not_named_by_its_number_is_refused():
    with pytest.raises(ValueError, match="'backups_v7' is not named v<number>_<what>"):
        version(_step("backups_v7"))
