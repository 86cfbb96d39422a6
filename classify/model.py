"""The compiled rules file: plain frozen data, safe to share between tasks.

A ``RuleSet`` is only ever built by the loader after every check passed, so
holding one means routing works; the ``version`` (content hash) goes into
each ticket so an agent can tell which rules routed it.
"""

from __future__ import annotations

from dataclasses import dataclass

from classify.conditions import Condition


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a rules file, located for an editor's jump-to-line."""

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


@dataclass(frozen=True, slots=True)
class Action:
    """What a matching rule sets; empty strings/None mean "leave as is"."""

    category: str = ""
    subcategory: str = ""
    priority: str = ""
    organisation: str = ""
    tags: tuple[str, ...] = ()
    template: str = ""
    suppress_reply: bool | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """A routing rule (first match wins) or an adjustment (all matches apply)."""

    name: str
    description: str
    when: Condition
    action: Action
    line: int = 0


@dataclass(frozen=True, slots=True)
class Expectation:
    """What an example mail must come out as; empty fields are not checked."""

    subcategory: str = ""
    category: str = ""
    priority: str = ""
    organisation: str = ""
    language: str = ""
    rule: str = ""


@dataclass(frozen=True, slots=True)
class InlineExample:
    """A small mail written into the rules file as a regression case."""

    name: str
    subject: str
    body: str
    sender: str
    to: tuple[str, ...]
    expect: Expectation
    line: int = 0


@dataclass(frozen=True, slots=True)
class RuleSet:
    path: str
    version: str
    rules: tuple[Rule, ...]
    fallback: Rule
    adjustments: tuple[Rule, ...] = ()
    examples: tuple[InlineExample, ...] = ()
    default_priority: str = "normal"
    default_language: str = ""
    fold_accents: bool = True
    examples_dir: str = ""

    def rule_named(self, name: str) -> Rule | None:
        for rule in (*self.rules, self.fallback, *self.adjustments):
            if rule.name == name:
                return rule
        return None
