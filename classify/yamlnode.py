"""YAML values paired with their line and column, and the problem list they feed.

ruamel.yaml keeps positions on the containers only (``lc``); scalars are
plain Python values.  Wrapping every value with the position its parent
recorded lets each check report ``file:line:col`` without re-parsing.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from classify.model import Problem


@dataclass(frozen=True, slots=True)
class Node:
    """A YAML value with 1-based line and column, as editors count them."""

    value: Any
    line: int
    column: int

    @property
    def is_map(self) -> bool:
        return isinstance(self.value, dict)

    @property
    def is_list(self) -> bool:
        return isinstance(self.value, list)

    def items(self) -> Iterator[tuple[Node, Node]]:
        """(key node, value node) pairs of a mapping."""
        value = self.value
        for key in value:
            if isinstance(value, CommentedMap):
                kl, kc, vl, vc = value.lc.data[key]
                yield Node(key, kl + 1, kc + 1), Node(value[key], vl + 1, vc + 1)
            else:
                yield Node(key, self.line, self.column), Node(value[key], self.line, self.column)

    def elements(self) -> Iterator[Node]:
        value = self.value
        for i, item in enumerate(value):
            if isinstance(value, CommentedSeq):
                line, col = value.lc.data[i]
                yield Node(item, line + 1, col + 1)
            else:
                yield Node(item, self.line, self.column)

    def get(self, key: str) -> Node | None:
        for k, v in self.items():
            if k.value == key:
                return v
        return None


def type_name(value: Any) -> str:
    """Plain words for YAML types: an admin knows 'a list', not 'CommentedSeq'."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def suggestion(word: Any, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.7)
    return f" (did you mean '{close[0]}'?)" if close else ""


@dataclass(slots=True)
class Problems:
    """Collects every problem instead of stopping at the first: one check, one fix round."""

    file: str
    found: list[Problem] = field(default_factory=list)

    def add(self, node: Node, message: str) -> None:
        self.found.append(Problem(self.file, node.line, node.column, message))

    def expect_text(self, node: Node | None, what: str, *, required: bool = False) -> str:
        if node is None:
            return ""
        if isinstance(node.value, str) and (node.value.strip() or not required):
            return node.value
        if isinstance(node.value, str):
            self.add(node, f"{what} must not be empty")
        else:
            self.add(node, f"{what} must be text, not {type_name(node.value)}")
        return ""

    def expect_bool(self, node: Node | None, what: str) -> bool | None:
        if node is None:
            return None
        if isinstance(node.value, bool):
            return node.value
        self.add(node, f"{what} must be true or false, not {type_name(node.value)}")
        return None

    def expect_texts(self, node: Node, what: str) -> list[tuple[Node, str]]:
        """A list of texts; a single text is accepted as a one-item list."""
        if isinstance(node.value, str):
            return [(node, node.value)]
        if not node.is_list:
            self.add(node, f"{what} must be a list of texts, not {type_name(node.value)}")
            return []
        out: list[tuple[Node, str]] = []
        for item in node.elements():
            if item.is_list:
                # A nested list comes from a YAML alias (*words): flatten it.
                out.extend(self.expect_texts(item, what))
            elif isinstance(item.value, str | int) and not isinstance(item.value, bool):
                out.append((item, str(item.value)))
            else:
                self.add(item, f"{what} must be texts, not {type_name(item.value)}")
        if not node.value:
            self.add(node, f"{what} is an empty list")
        return out

    def check_keys(self, node: Node, allowed: Iterable[str], what: str) -> None:
        allowed = tuple(allowed)
        for key, _ in node.items():
            if key.value not in allowed:
                self.add(
                    key,
                    f"unknown key '{key.value}' in {what}{suggestion(key.value, allowed)}; "
                    f"expected one of: {', '.join(allowed)}",
                )
