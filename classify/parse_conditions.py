"""``when:`` blocks of the rules file to compiled conditions, with located problems.

Grammar (every mapping with several keys means *all of them*)::

    when:
      any: [<condition>, ...]        # one is enough
      all: [<condition>, ...]        # each must hold
      not: <condition>
      subject | body | text | full_body: <words> | {any|all: <words>, regex: .., stem: .., fold_accents: ..}
      header: {name: X-Priority, any|all|regex|exists: ..}
      sender | recipient: <addresses/domains/globs> | {any: .., regex: .., plus: [tag]}
      attachment | attachment_type: <globs> | {any: .., regex: ..}
      language | organisation: <ids>  (category | subcategory in adjustments)

Everything is compiled here, once, at load time: regexes, globs, stems.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass

from classify.categories import ALL_SUBCATEGORIES, CATEGORIES, LANGUAGES
from classify.conditions import (
    AllOf,
    AnyOf,
    Condition,
    HeaderExists,
    Keywords,
    Not,
    OneOf,
    Patterns,
    PlusTag,
    Regex,
)
from classify.text import Keyword, fold
from classify.yamlnode import Node, Problems, suggestion, type_name

COMBINATORS = ("any", "all", "not")
TEXT_FIELDS = ("subject", "body", "text", "full_body")
ADDRESS_FIELDS = ("sender", "recipient")
FILE_FIELDS = ("attachment", "attachment_type")
VALUE_FIELDS = ("language", "organisation")
DECISION_FIELDS = ("category", "subcategory")
FIELDS = (*TEXT_FIELDS, "header", *ADDRESS_FIELDS, *FILE_FIELDS, *VALUE_FIELDS)

_OPS: dict[str, tuple[str, ...]] = {
    "text": ("any", "all", "regex", "stem", "fold_accents"),
    "header": ("name", "any", "all", "regex", "exists", "stem", "fold_accents"),
    "sender": ("any", "regex"),
    "recipient": ("any", "regex", "plus"),
    "file": ("any", "regex"),
    "value": ("any",),
}


@dataclass(frozen=True, slots=True)
class Compiled:
    condition: Condition
    text: str


@dataclass(slots=True)
class ConditionParser:
    """Turns one ``when`` tree into a Condition; ``fold_accents`` is the file default."""

    problems: Problems
    fold_accents: bool = True
    adjustments: bool = False

    def parse(self, node: Node) -> Compiled | None:
        if not node.is_map:
            self.problems.add(node, f"a condition must be a mapping, not {type_name(node.value)}")
            return None
        if not node.value:
            self.problems.add(node, "empty condition; leave out 'when' to match every mail")
            return None
        parts: list[Compiled] = []
        for key, value in node.items():
            part = self._one(key, value)
            if part is not None:
                parts.append(part)
        if len(parts) != len(node.value):
            return None
        return _all(parts)

    def _one(self, key: Node, value: Node) -> Compiled | None:
        name = key.value
        fields = FIELDS + (DECISION_FIELDS if self.adjustments else ())
        if name in ("any", "all"):
            return self._group(name, value)
        if name == "not":
            inner = self.parse(value)
            if inner is None:
                return None
            return Compiled(Not(inner.condition, inner.text), f"not ({inner.text})")
        if name in DECISION_FIELDS and not self.adjustments:
            self.problems.add(
                key, f"'{name}' can only be tested in adjustments, after routing has decided it"
            )
            return None
        if name not in fields:
            choices = (*COMBINATORS, *fields)
            self.problems.add(
                key,
                f"unknown field '{name}'{suggestion(name, choices)}; expected one of: "
                + ", ".join(choices),
            )
            return None
        ops = value if value.is_map else None
        if ops is None:
            ops = Node({"any": value.value}, value.line, value.column)
            shorthand = True
        else:
            shorthand = False
        kind = self._kind(name)
        if not shorthand:
            self.problems.check_keys(ops, _OPS[kind], f"the '{name}' condition")
        return self._field(name, kind, ops, value if shorthand else None)

    @staticmethod
    def _kind(name: str) -> str:
        if name in TEXT_FIELDS:
            return "text"
        if name in ("header", "sender", "recipient"):
            return name
        return "file" if name in FILE_FIELDS else "value"

    def _group(self, name: str, value: Node) -> Compiled | None:
        if not value.is_list or not value.value:
            self.problems.add(value, f"'{name}' needs a non-empty list of conditions")
            return None
        parts = [self.parse(item) for item in value.elements()]
        good = [p for p in parts if p is not None]
        if len(good) != len(parts):
            return None
        if len(good) == 1:
            return good[0]
        joiner = " or " if name == "any" else " and "
        text = "(" + joiner.join(p.text for p in good) + ")"
        children = tuple(p.condition for p in good)
        return Compiled(AnyOf(children) if name == "any" else AllOf(children), text)

    def _field(self, name: str, kind: str, ops: Node, whole: Node | None) -> Compiled | None:
        field = name
        if kind == "header":
            header = self.problems.expect_text(ops.get("name"), "header name", required=True)
            if ops.get("name") is None:
                self.problems.add(ops, "a 'header' condition needs 'name' (the header to test)")
            if not header:
                return None
            field = f"header:{header.lower()}"
        parts: list[Compiled] = []
        count = 0
        for key, value in ops.items():
            where = whole or value
            build = self._builder(kind, key.value)
            if build is None:
                continue
            count += 1
            part = build(name, field, where, ops, key.value)
            if part is not None:
                parts.append(part)
        if count == 0:
            if all(k.value in _OPS[kind] for k, _ in ops.items()):
                self.problems.add(ops, f"the '{name}' condition has nothing to test")
            return None
        if len(parts) != count:
            return None
        return _all(parts)

    def _builder(
        self, kind: str, op: str
    ) -> Callable[[str, str, Node, Node, str], Compiled | None] | None:
        if op in ("stem", "fold_accents", "name") or op not in _OPS[kind]:
            return None
        if op == "regex":
            return self._regex
        if op == "exists":
            return self._exists
        if op == "plus":
            return self._plus
        if kind in ("text", "header"):
            return self._keywords
        if kind == "value":
            return self._values
        return self._patterns

    def _keywords(self, name: str, field: str, node: Node, ops: Node, op: str) -> Compiled | None:
        stem = self.problems.expect_bool(ops.get("stem"), "'stem'")
        folding = self.problems.expect_bool(ops.get("fold_accents"), "'fold_accents'")
        fold_accents = self.fold_accents if folding is None else folding
        require_all = op == "all"
        words = self.problems.expect_texts(node, f"keywords of '{name}'")
        keywords: list[Keyword] = []
        for item, word in words:
            keyword = Keyword.compile(word, stem=stem is not False, fold_accents=fold_accents)
            if not keyword.words or not keyword.words[0]:
                self.problems.add(item, f"keyword '{word}' has no letters or digits to match")
                continue
            keywords.append(keyword)
        if len(keywords) != len(words) or not words:
            return None
        label = "header " + field[7:] if field.startswith("header:") else name
        quantifier = "all of" if require_all else "any of"
        text = f"{label} has {quantifier} " + ", ".join(f"'{k.text}'" for k in keywords[:6])
        text += ", …" if len(keywords) > 6 else ""
        keys: frozenset[str] | None = frozenset()
        for keyword in keywords:
            own = keyword.first_keys
            keys = None if own is None or keys is None else keys | own
        return Compiled(Keywords(field, tuple(keywords), require_all, keys), text)

    def _regex(self, name: str, field: str, node: Node, ops: Node, op: str) -> Compiled | None:
        compiled: list[re.Pattern[str]] = []
        ok = True
        for item, text in self.problems.expect_texts(node, f"regex of '{name}'"):
            try:
                compiled.append(re.compile(text, re.IGNORECASE))
            except re.error as exc:
                ok = False
                self.problems.add(item, f"bad regular expression '{text}': {exc}")
        if not ok or not compiled:
            return None
        label = "header " + field[7:] if field.startswith("header:") else name
        return Compiled(Regex(field, tuple(compiled)), f"{label} matches /{compiled[0].pattern}/")

    def _exists(self, name: str, field: str, node: Node, ops: Node, op: str) -> Compiled | None:
        wanted = self.problems.expect_bool(node, "'exists'")
        if wanted is None:
            return None
        present = HeaderExists(field[7:])
        text = f"header {field[7:]} is present"
        return Compiled(present, text) if wanted else Compiled(Not(present, text), f"not ({text})")

    def _plus(self, name: str, field: str, node: Node, ops: Node, op: str) -> Compiled | None:
        tags = [t.casefold() for _, t in self.problems.expect_texts(node, "plus tags")]
        if not tags:
            return None
        return Compiled(PlusTag(frozenset(tags)), "recipient plus tag is " + "/".join(tags))

    def _patterns(self, name: str, field: str, node: Node, ops: Node, op: str) -> Compiled | None:
        items = self.problems.expect_texts(node, f"patterns of '{name}'")
        patterns: list[tuple[str, re.Pattern[str]]] = []
        for item, text in items:
            pattern = _address_pattern(text) if name in ADDRESS_FIELDS else _glob(text)
            if pattern is None:
                self.problems.add(item, f"'{text}' is not an address, a domain or a glob")
                continue
            patterns.append((text, pattern))
        if len(patterns) != len(items) or not patterns:
            return None
        shown = ", ".join(f"'{t}'" for t, _ in patterns[:6])
        return Compiled(Patterns(name, tuple(patterns)), f"{name} is one of {shown}")

    def _values(self, name: str, field: str, node: Node, ops: Node, op: str) -> Compiled | None:
        items = self.problems.expect_texts(node, f"values of '{name}'")
        known: dict[str, frozenset[str]] = {
            "language": frozenset(LANGUAGES),
            "category": frozenset(CATEGORIES),
            "subcategory": ALL_SUBCATEGORIES,
        }
        allowed = known.get(name)
        ok = True
        for item, text in items:
            if allowed is not None and text not in allowed:
                ok = False
                self.problems.add(
                    item, f"unknown {name} '{text}'{suggestion(text, sorted(allowed))}"
                )
        if not ok or not items:
            return None
        values = frozenset(t for _, t in items)
        return Compiled(OneOf(name, values), f"{name} is " + "/".join(sorted(values)))


def _all(parts: list[Compiled]) -> Compiled:
    if len(parts) == 1:
        return parts[0]
    return Compiled(AllOf(tuple(p.condition for p in parts)), " and ".join(p.text for p in parts))


def _glob(text: str) -> re.Pattern[str] | None:
    cleaned = fold(text.strip()).casefold()
    return re.compile(fnmatch.translate(cleaned)) if cleaned else None


def _address_pattern(text: str) -> re.Pattern[str] | None:
    """``a@b.fi`` exact, ``b.fi``/``@b.fi`` the domain and its subdomains, ``*`` globs."""
    cleaned = text.strip().casefold()
    if not cleaned or " " in cleaned:
        return None
    if "*" in cleaned or "?" in cleaned:
        return re.compile(fnmatch.translate(cleaned))
    if "@" in cleaned and not cleaned.startswith("@"):
        return re.compile(re.escape(cleaned))
    domain = cleaned.lstrip("@")
    if "." not in domain:
        return None
    return re.compile(r"[^@\s]+@(?:[^@\s]+\.)?" + re.escape(domain))
