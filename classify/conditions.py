"""Compiled conditions: each test returns the evidence it found, or None.

Returning evidence instead of a bool is what lets an agent read *why* a
ticket is in their queue ("subject has 'salasanani' (keyword 'salasana')")
without a second, drifting explanation code path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from classify.features import MailFeatures, plus_tag
from classify.text import Keyword, fold

Evidence = tuple[str, ...]


class Condition:
    """Base class; subclasses are frozen dataclasses built by the loader."""

    def test(self, f: MailFeatures) -> Evidence | None:  # pragma: no cover - abstract
        raise NotImplementedError


def _field_label(name: str) -> str:
    return f"header {name[7:]}" if name.startswith("header:") else name


def _find(f: MailFeatures, field_name: str, keyword: Keyword) -> tuple[str, str] | None:
    """(field, matched words) for one keyword, memoised per mail.

    The same keyword tends to appear in several rules; the memo keeps the cost
    per mail proportional to distinct keywords, not to rules.
    """
    names = ("subject", "body") if field_name == "text" else (field_name,)
    for name in names:
        index = f.index(name)
        if keyword.absent_from(index):
            continue  # most keywords of most rules: no memo needed
        key = (id(keyword), name)
        if key in f.memo:
            hit = f.memo[key]
        else:
            hit = keyword.find(index)
            f.memo[key] = hit
        if hit is not None:
            return name, hit
    return None


def _quote_hit(name: str, hit: str, keyword: Keyword) -> str:
    same = hit.casefold() == keyword.text.casefold()
    suffix = "" if same else f" (keyword '{keyword.text}')"
    return f"{_field_label(name)} has '{hit}'{suffix}"


@dataclass(frozen=True, slots=True)
class Keywords(Condition):
    """``any``: one keyword is enough; ``all``: each must appear somewhere in the field."""

    field: str
    keywords: tuple[Keyword, ...]
    require_all: bool = False
    # Union of the keywords' index keys; None when a wildcard makes a pre-check unsafe.
    keys: frozenset[str] | None = None

    def test(self, f: MailFeatures) -> Evidence | None:
        if self.keys is not None:
            names = ("subject", "body") if self.field == "text" else (self.field,)
            if not any(f.index(name).has_any(self.keys) for name in names):
                return None
        evidence: list[str] = []
        for keyword in self.keywords:
            found = _find(f, self.field, keyword)
            if found is None:
                if self.require_all:
                    return None
                continue
            evidence.append(_quote_hit(found[0], found[1], keyword))
            if not self.require_all:
                return tuple(evidence)
        return tuple(evidence) if evidence else None


@dataclass(frozen=True, slots=True)
class Regex(Condition):
    """Regular expressions on the text as written (not stemmed)."""

    field: str
    patterns: tuple[re.Pattern[str], ...]

    def _values(self, f: MailFeatures) -> list[tuple[str, str]]:
        if self.field == "text":
            return [("subject", f.raw("subject")), ("body", f.raw("body"))]
        if self.field == "sender":
            return [("sender", f.sender)]
        if self.field == "recipient":
            return [("recipient", r) for r in f.recipients]
        if self.field == "attachment":
            return [("attachment", n) for n in f.attachment_names]
        if self.field == "attachment_type":
            return [("attachment type", t) for t in f.attachment_types]
        return [(_field_label(self.field), f.raw(self.field))]

    def test(self, f: MailFeatures) -> Evidence | None:
        for label, value in self._values(f):
            for pattern in self.patterns:
                match = pattern.search(value)
                if match:
                    return (f"{label} matches /{pattern.pattern}/ at '{match.group(0)[:60]}'",)
        return None


@dataclass(frozen=True, slots=True)
class Patterns(Condition):
    """Addresses, domains or file globs, compiled to anchored regexes at load time."""

    field: str
    patterns: tuple[tuple[str, re.Pattern[str]], ...]

    def _values(self, f: MailFeatures) -> tuple[str, ...]:
        if self.field == "sender":
            return (f.sender,) if f.sender else ()
        if self.field == "recipient":
            return f.recipients
        if self.field == "attachment":
            return f.attachment_names
        return f.attachment_types

    def test(self, f: MailFeatures) -> Evidence | None:
        label = self.field.replace("_", " ")
        for value in self._values(f):
            for text, pattern in self.patterns:
                if pattern.fullmatch(fold(value).casefold()):
                    return (f"{label} '{value}' matches '{text}'",)
        return None


@dataclass(frozen=True, slots=True)
class PlusTag(Condition):
    """``servicedesk+palkat@…``: admins hand out tagged addresses for direct routing."""

    tags: frozenset[str]

    def test(self, f: MailFeatures) -> Evidence | None:
        for address in f.recipients:
            tag = plus_tag(address)
            if tag and tag.casefold() in self.tags:
                return (f"recipient '{address}' has plus tag '{tag}'",)
        return None


@dataclass(frozen=True, slots=True)
class HeaderExists(Condition):
    name: str

    def test(self, f: MailFeatures) -> Evidence | None:
        return (f"header {self.name} is present",) if f.mail.header(self.name) else None


@dataclass(frozen=True, slots=True)
class OneOf(Condition):
    """Language, organisation, and (in adjustments) the routed category."""

    field: str
    values: frozenset[str]

    def test(self, f: MailFeatures) -> Evidence | None:
        actual = {
            "language": f.language,
            "organisation": f.organisation,
            "category": f.category,
            "subcategory": f.subcategory,
        }[self.field]
        return (f"{self.field} is {actual}",) if actual in self.values else None


@dataclass(frozen=True, slots=True)
class AnyOf(Condition):
    children: tuple[Condition, ...]

    def test(self, f: MailFeatures) -> Evidence | None:
        for child in self.children:
            found = child.test(f)
            if found is not None:
                return found
        return None


@dataclass(frozen=True, slots=True)
class AllOf(Condition):
    children: tuple[Condition, ...]

    def test(self, f: MailFeatures) -> Evidence | None:
        evidence: list[str] = []
        for child in self.children:
            found = child.test(f)
            if found is None:
                return None
            evidence.extend(found)
        return tuple(evidence)


@dataclass(frozen=True, slots=True)
class Not(Condition):
    child: Condition
    text: str

    def test(self, f: MailFeatures) -> Evidence | None:
        return None if self.child.test(f) is not None else (f"not ({self.text})",)


@dataclass(frozen=True, slots=True)
class Always(Condition):
    """A rule without ``when``: matches everything (and makes later rules unreachable)."""

    def test(self, f: MailFeatures) -> Evidence | None:
        return ("matches every mail",)
