"""Read and check a rules file: a RuleSet when everything is right, else every problem.

The loader refuses rather than guesses: a rules file with one bad regex is
rejected whole, so the daemon keeps its last good rules instead of routing
with a silently shortened list.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from classify.categories import ALL_SUBCATEGORIES, CATEGORIES, LANGUAGES, PRIORITIES, category_of
from classify.conditions import Always
from classify.model import Action, Expectation, InlineExample, Problem, Rule, RuleSet
from classify.parse_conditions import ConditionParser
from classify.yamlnode import Node, Problems, suggestion, type_name

TOP_KEYS = (
    "version", "settings", "vocabulary", "rules", "fallback", "adjustments", "examples",
)  # fmt: skip
SETTING_KEYS = ("fold_accents", "default_priority", "default_language", "examples_dir")
RULE_KEYS = ("name", "description", "when", "then")
ACTION_KEYS = (
    "category", "subcategory", "priority", "organisation", "tags", "template", "suppress_reply",
)  # fmt: skip
ADJUST_ACTION_KEYS = ("priority", "organisation", "tags", "template", "suppress_reply")
EXAMPLE_KEYS = ("name", "subject", "body", "from", "to", "expect")
EXPECT_KEYS = ("category", "subcategory", "priority", "organisation", "language", "rule")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_ORG = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def load_rules(path: str | Path) -> RuleSet | list[Problem]:
    """Load ``path``; the result is either usable rules or the reasons it is not."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return [Problem(name, 1, 1, f"cannot read the rules file: {exc.strerror or exc}")]
    return load_rules_bytes(data, name)


def load_rules_bytes(data: bytes, name: str = "<rules>") -> RuleSet | list[Problem]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [Problem(name, 1, 1, f"the file is not UTF-8 text (byte {exc.start})")]
    root, problems = _parse_yaml(text, name)
    if root is None:
        return problems
    return _Builder(name, hashlib.sha256(data).hexdigest()[:12]).build(root)


def _parse_yaml(text: str, name: str) -> tuple[Node | None, list[Problem]]:
    yaml = YAML(typ="rt")
    try:
        value: Any = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        return None, [Problem(name, line, col, f"YAML syntax: {what}")]
    except YAMLError as exc:
        return None, [Problem(name, 1, 1, f"YAML syntax: {exc}")]
    if not isinstance(value, dict):
        return None, [Problem(name, 1, 1, f"the file must be a mapping, not {type_name(value)}")]
    return Node(value, 1, 1), []


class _Builder:
    """One pass over the tree: checks and compiles together so they never disagree."""

    def __init__(self, name: str, version: str) -> None:
        self.name = name
        self.version = version
        self.problems = Problems(name)

    def build(self, root: Node) -> RuleSet | list[Problem]:
        p = self.problems
        p.check_keys(root, TOP_KEYS, "the rules file")
        version = root.get("version")
        if version is not None and version.value != 1:
            p.add(version, f"format version must be 1, not {version.value!r}")
        settings = self._settings(root.get("settings"))
        self._vocabulary(root.get("vocabulary"))
        parser = ConditionParser(p, fold_accents=settings["fold_accents"] is not False)
        rules = self._rules(root, "rules", parser, adjust=False)
        adjust_parser = ConditionParser(p, parser.fold_accents, adjustments=True)
        adjustments = self._rules(root, "adjustments", adjust_parser, adjust=True)
        fallback = self._fallback(root)
        self._names([*rules, *adjustments, *([fallback] if fallback else [])])
        examples = self._examples(root.get("examples"))
        if p.found or fallback is None:
            return sorted(p.found, key=lambda x: (x.line, x.column))
        return RuleSet(
            path=self.name,
            version=self.version,
            rules=tuple(rules),
            fallback=fallback,
            adjustments=tuple(adjustments),
            examples=tuple(examples),
            default_priority=str(settings["default_priority"] or "normal"),
            default_language=str(settings["default_language"] or ""),
            fold_accents=parser.fold_accents,
            examples_dir=str(settings["examples_dir"] or ""),
        )

    def _settings(self, node: Node | None) -> dict[str, Any]:
        p = self.problems
        out: dict[str, Any] = dict.fromkeys(SETTING_KEYS)
        if node is None:
            return out
        if not node.is_map:
            p.add(node, f"'settings' must be a mapping, not {type_name(node.value)}")
            return out
        p.check_keys(node, SETTING_KEYS, "settings")
        out["fold_accents"] = p.expect_bool(node.get("fold_accents"), "'fold_accents'")
        prio = node.get("default_priority")
        out["default_priority"] = self._choice(prio, PRIORITIES, "priority")
        lang = node.get("default_language")
        out["default_language"] = self._choice(lang, LANGUAGES, "language")
        out["examples_dir"] = p.expect_text(node.get("examples_dir"), "'examples_dir'")
        return out

    def _vocabulary(self, node: Node | None) -> None:
        """Named word lists, shared between rules through YAML anchors (&name / *name)."""
        if node is None:
            return
        if not node.is_map:
            self.problems.add(node, f"'vocabulary' must be a mapping, not {type_name(node.value)}")
            return
        for key, value in node.items():
            self.problems.expect_texts(value, f"vocabulary '{key.value}'")

    def _choice(self, node: Node | None, allowed: tuple[str, ...], what: str) -> str:
        if node is None:
            return ""
        text = self.problems.expect_text(node, what, required=True)
        if text and text not in allowed:
            self.problems.add(
                node,
                f"unknown {what} '{text}'{suggestion(text, allowed)}; expected one of: "
                + ", ".join(allowed),
            )
            return ""
        return text

    def _rules(self, root: Node, key: str, parser: ConditionParser, adjust: bool) -> list[Rule]:
        p = self.problems
        node = root.get(key)
        if node is None:
            if not adjust:
                p.add(root, "the file has no 'rules' list")
            return []
        if not node.is_list:
            p.add(node, f"'{key}' must be a list of rules, not {type_name(node.value)}")
            return []
        rules: list[Rule] = []
        catch_all: Rule | None = None
        for item in node.elements():
            rule = self._rule(item, parser, adjust)
            if rule is None:
                continue
            if catch_all is not None and not adjust:
                p.add(
                    item,
                    f"rule '{rule.name}' can never match: rule '{catch_all.name}' "
                    f"(line {catch_all.line}) has no 'when' and catches every mail",
                )
            if isinstance(rule.when, Always) and catch_all is None and not adjust:
                catch_all = rule
            rules.append(rule)
        return rules

    def _rule(self, node: Node, parser: ConditionParser, adjust: bool) -> Rule | None:
        p = self.problems
        if not node.is_map:
            p.add(node, f"a rule must be a mapping, not {type_name(node.value)}")
            return None
        p.check_keys(node, RULE_KEYS, "a rule")
        name_node = node.get("name")
        name = p.expect_text(name_node, "the rule name", required=True)
        if name_node is None:
            p.add(node, "the rule has no 'name'")
        elif name and not _NAME.match(name):
            p.add(name_node, f"rule name '{name}' may only use letters, digits, '-', '_', '.'")
        description = p.expect_text(node.get("description"), "the description")
        when_node = node.get("when")
        compiled = parser.parse(when_node) if when_node is not None else None
        if adjust and when_node is None:
            p.add(node, f"adjustment '{name}' has no 'when'; adjustments must say when they apply")
        # The action is checked even when 'when' failed, so one run shows every problem.
        action = self._action(node.get("then"), node, adjust, name)
        if action is None or (when_node is not None and compiled is None):
            return None
        when = compiled.condition if compiled else Always()
        return Rule(name or f"line-{node.line}", description, when, action, node.line)

    def _action(self, node: Node | None, rule: Node, adjust: bool, name: str) -> Action | None:
        p = self.problems
        if node is None:
            p.add(rule, f"rule '{name}' has no 'then' saying where the mail goes")
            return None
        if not node.is_map:
            p.add(node, f"'then' must be a mapping, not {type_name(node.value)}")
            return None
        allowed = ADJUST_ACTION_KEYS if adjust else ACTION_KEYS
        p.check_keys(node, allowed, "an adjustment's 'then'" if adjust else "'then'")
        before = len(p.found)
        category = self._choice(node.get("category"), CATEGORIES, "category")
        sub_node = node.get("subcategory")
        subcategory = p.expect_text(sub_node, "subcategory", required=True)
        if sub_node is not None and subcategory and subcategory not in ALL_SUBCATEGORIES:
            p.add(
                sub_node,
                f"unknown subcategory '{subcategory}'{suggestion(subcategory, ALL_SUBCATEGORIES)}"
                "; the ids are listed in DESIGN.md",
            )
        elif subcategory and category and category_of(subcategory) != category:
            p.add(sub_node or node, f"subcategory '{subcategory}' is not in category '{category}'")
        if not adjust and sub_node is None:
            p.add(node, f"rule '{name}' must set a 'subcategory' (for example it.advice)")
        priority = self._choice(node.get("priority"), PRIORITIES, "priority")
        org_node = node.get("organisation")
        organisation = p.expect_text(org_node, "organisation", required=True)
        if org_node is not None and organisation and not _ORG.match(organisation):
            p.add(org_node, f"organisation id '{organisation}' must be lower-case like 'siun-sote'")
        tags_node = node.get("tags")
        tags = tuple(t for _, t in p.expect_texts(tags_node, "tags")) if tags_node else ()
        template = p.expect_text(node.get("template"), "template", required=True)
        suppress = p.expect_bool(node.get("suppress_reply"), "'suppress_reply'")
        if len(p.found) != before:
            return None
        return Action(
            category=category or (category_of(subcategory) if subcategory else ""),
            subcategory=subcategory,
            priority=priority,
            organisation=organisation,
            tags=tags,
            template=template,
            suppress_reply=suppress,
        )

    def _fallback(self, root: Node) -> Rule | None:
        p = self.problems
        node = root.get("fallback")
        if node is None:
            p.add(root, "the file has no 'fallback' saying where unmatched mail goes")
            return None
        if not node.is_map:
            p.add(node, f"'fallback' must be a mapping, not {type_name(node.value)}")
            return None
        p.check_keys(node, ("name", "description", "then"), "the fallback")
        if node.get("when") is not None:
            return None
        name = p.expect_text(node.get("name"), "the fallback name", required=True) or "fallback"
        description = p.expect_text(node.get("description"), "the description")
        action = self._action(node.get("then"), node, False, name)
        return Rule(name, description, Always(), action, node.line) if action else None

    def _names(self, rules: list[Rule]) -> None:
        seen: dict[str, int] = {}
        for rule in rules:
            if rule.name in seen:
                self.problems.found.append(
                    Problem(
                        self.name,
                        rule.line,
                        1,
                        f"duplicate rule name '{rule.name}' (first used on line "
                        f"{seen[rule.name]}); reasons and reports need unique names",
                    )
                )
            else:
                seen[rule.name] = rule.line

    def _examples(self, node: Node | None) -> list[InlineExample]:
        p = self.problems
        if node is None:
            return []
        if not node.is_list:
            p.add(node, f"'examples' must be a list, not {type_name(node.value)}")
            return []
        out: list[InlineExample] = []
        for item in node.elements():
            if not item.is_map:
                p.add(item, f"an example must be a mapping, not {type_name(item.value)}")
                continue
            p.check_keys(item, EXAMPLE_KEYS, "an example")
            expect = self._expect(item.get("expect"), item)
            to_node = item.get("to")
            recipients = tuple(t for _, t in p.expect_texts(to_node, "'to'")) if to_node else ()
            out.append(
                InlineExample(
                    name=p.expect_text(item.get("name"), "example name") or f"line-{item.line}",
                    subject=p.expect_text(item.get("subject"), "subject"),
                    body=p.expect_text(item.get("body"), "body"),
                    sender=p.expect_text(item.get("from"), "'from'") or "someone@example.org",
                    to=recipients or ("servicedesk@example.org",),
                    expect=expect,
                    line=item.line,
                )
            )
        return out

    def _expect(self, node: Node | None, example: Node) -> Expectation:
        p = self.problems
        if node is None:
            p.add(example, "the example has no 'expect'")
            return Expectation()
        if isinstance(node.value, str):
            node = Node({"subcategory": node.value}, node.line, node.column)
        if not node.is_map:
            p.add(node, f"'expect' must be a subcategory or a mapping, not {type_name(node.value)}")
            return Expectation()
        p.check_keys(node, EXPECT_KEYS, "'expect'")
        values = {k: p.expect_text(node.get(k), k) for k in EXPECT_KEYS}
        sub = values["subcategory"]
        if sub and sub not in ALL_SUBCATEGORIES:
            p.add(node.get("subcategory") or node, f"unknown subcategory '{sub}' in 'expect'")
        return Expectation(**values)
