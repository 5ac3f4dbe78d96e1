"""How a pydantic validation error of app.yml reads: the exact path of the field at fault
(under ``environments.ENV`` when an override put it there) and a plain message; a value
quoted from the file is cut short, however large it is."""

from __future__ import annotations

from typing import Any

from core.bounded import clip, quote


def describe(err: Any, env: str | None, override: dict[str, Any], base: dict[str, Any]) -> str:
    loc = [part for part in err["loc"] if not _is_union_tag(part)]
    path = _path(loc)
    reach = _depth(loc, override)
    if env is not None and reach and reach >= _depth(loc, base):
        path = f"environments.{env}.{path}" if path else f"environments.{env}"
    return f"{clip(path) or '(top level)'}: {_message(err)}"


def _is_union_tag(part: Any) -> bool:
    # pydantic puts the failing union member (e.g. 'list[str]') into the location
    return isinstance(part, str) and ("[" in part or part in {"str", "int", "function-after"})


def _path(loc: list[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _depth(loc: list[Any], tree: Any) -> int:
    """How far along ``loc`` a tree reaches; the override is at fault when it reaches as far
    as the base (its value replaced the base's) or further."""
    depth = 0
    for part in loc:
        in_map = isinstance(tree, dict) and part in tree
        in_list = isinstance(tree, list) and isinstance(part, int) and part < len(tree)
        if not (in_map or in_list):
            break
        tree = tree[part]
        depth += 1
    return depth


def _message(err: Any) -> str:
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required"
    if kind in {"greater_than_equal", "greater_than", "less_than_equal", "less_than"}:
        op = {
            "greater_than_equal": "≥",
            "greater_than": ">",
            "less_than_equal": "≤",
            "less_than": "<",
        }[kind]
        bound = next(iter(ctx.values()))
        return f"must be {op} {bound}, got {quote(value)}"
    if kind in {"int_type", "int_parsing", "int_from_float"}:
        return f"expected a whole number, got {quote(value)}"
    if kind in {"float_type", "float_parsing"}:
        return f"expected a number, got {quote(value)}"
    if kind in {"bool_type", "bool_parsing"}:
        return f"expected true or false, got {quote(value)}"
    if kind in {"string_type"}:
        return f"expected a string, got {quote(value)}"
    if kind in {"list_type"}:
        return f"expected a list, got {quote(value)}"
    if kind in {"dict_type", "model_type", "model_attributes_type"}:
        return f"expected a mapping, got {quote(value)}"
    if kind == "value_error":
        return clip(str(ctx.get("error", err["msg"])))
    return clip(err["msg"][0].lower() + err["msg"][1:])
