"""What hostile input may cost: the size of a config file, the values its YAML aliases
expand to, and the length of any value quoted back in an error, a reply or the audit.

A YAML alias repeats a node without copying it, so a 1 KB file can stand for billions of
values; they cost nothing until something walks them as a tree (validation, ``repr``, a
deep copy). The loader counts what the document expands to from its node graph, before
any Python value is built, and refuses past a budget no real config comes near.
"""

from __future__ import annotations

import reprlib
from typing import Any

import yaml

from core.errors import CoreError

MAX_FILE_BYTES = 256 * 1024
# Nodes the document may expand to, aliases followed (a scalar counts once per started
# SCALAR_CHARS characters). A large app.yml has a few thousand.
MAX_NODES = 50_000
SCALAR_CHARS = 256
MAX_QUOTE = 200
MAX_ERRORS = 5  # problems named in one error message


_repr = reprlib.Repr()
_repr.maxlevel, _repr.maxstring, _repr.maxother = 3, 120, 120
_repr.maxdict = _repr.maxlist = _repr.maxtuple = _repr.maxset = 6


class InputTooLarge(CoreError):
    """A config file past the size or alias budget."""


def clip(text: str, limit: int = MAX_QUOTE) -> str:
    """``text`` cut to ``limit`` characters, ending in "…" when something was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def quote(value: Any, limit: int = MAX_QUOTE) -> str:
    """``repr(value)``, cut to ``limit`` characters however large or deep the value is."""
    return clip(_repr.repr(value), limit)


def check_size(size: int, source: str) -> None:
    if size > MAX_FILE_BYTES:
        raise InputTooLarge(
            f"{source} is {size:,} bytes, over the {MAX_FILE_BYTES // 1024} KB a config file "
            "may have: make it smaller; nothing was read"
        )


def load_yaml(text: str, source: str) -> Any:
    """``yaml.safe_load(text)`` within the file and alias budgets; raises ``InputTooLarge``
    (and ``yaml.YAMLError`` for text that is not YAML)."""
    check_size(len(text.encode("utf-8", "surrogatepass")), source)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        expanded = expansion(node, MAX_NODES)
        if expanded > MAX_NODES:
            raise InputTooLarge(
                f"{source}: its YAML aliases expand to more than {MAX_NODES:,} values "
                "(or refer to themselves): write the values out; nothing was read"
            )
        return loader.construct_document(node)
    finally:
        loader.dispose()


def expansion(root: yaml.Node, budget: int) -> int:
    """How many nodes ``root`` stands for with every alias followed, counted on the graph
    (each node once) and stopped past ``budget``; a node inside itself counts as past it."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            open_nodes.discard(key)
            total = 1 + sum(sizes[id(child)] for child in _children(node))
            sizes[key] = min(total, budget + 1)
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            return budget + 1
        if isinstance(node, yaml.ScalarNode):
            sizes[key] = 1 + len(node.value) // SCALAR_CHARS
            continue
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []
