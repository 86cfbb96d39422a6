"""Every kind of rules-file mistake is reported with file:line:column and a plain sentence."""

from __future__ import annotations

from pathlib import Path

from classify.loader import load_rules

from .helpers import DEFAULT_RULES, problems, rules

FALLBACK = "fallback:\n  then: {subcategory: it.advice}\n"


def test_default_rules_load() -> None:
    loaded = load_rules(DEFAULT_RULES)
    assert not isinstance(loaded, list), "\n".join(map(str, loaded))
    assert len(loaded.rules) > 20
    assert len(loaded.version) == 12


def test_version_is_a_content_hash() -> None:
    base = "rules:\n  - name: a\n    when: {subject: [x]}\n    then: {subcategory: it.advice}\n"
    one = rules(base + FALLBACK)
    same = rules(base + FALLBACK)
    other = rules(base.replace("[x]", "[y]") + FALLBACK)
    assert one.version == same.version != other.version


def test_unknown_category_and_subcategory() -> None:
    found = problems(
        "rules:\n"
        "  - name: a\n"
        "    when: {subject: [x]}\n"
        "    then: {subcategory: hr.taxes}\n"
        "  - name: b\n"
        "    when: {subject: [y]}\n"
        "    then: {category: payroll, subcategory: hr.tax}\n" + FALLBACK
    )
    assert found[0].startswith("rules.yaml:4:25: unknown subcategory 'hr.taxes'")
    assert "did you mean 'hr.tax'" in found[0]
    assert found[1].startswith("rules.yaml:7:22: unknown category 'payroll'")


def test_subcategory_outside_category() -> None:
    found = problems(
        "rules:\n  - name: a\n    when: {subject: [x]}\n"
        "    then: {category: it, subcategory: hr.tax}\n" + FALLBACK
    )
    assert found == ["rules.yaml:4:39: subcategory 'hr.tax' is not in category 'it'"]


def test_bad_regex() -> None:
    found = problems(
        "rules:\n  - name: a\n    when:\n      subject: {regex: 'tax[0-9'}\n"
        "    then: {subcategory: hr.tax}\n" + FALLBACK
    )
    assert len(found) == 1
    assert found[0].startswith("rules.yaml:4:24: bad regular expression 'tax[0-9':")


def test_unknown_field_with_suggestion() -> None:
    found = problems(
        "rules:\n  - name: a\n    when: {subjekt: [x]}\n"
        "    then: {subcategory: it.advice}\n" + FALLBACK
    )
    assert found[0].startswith("rules.yaml:3:12: unknown field 'subjekt' (did you mean 'subject'?)")


def test_unknown_operator() -> None:
    found = problems(
        "rules:\n  - name: a\n    when: {subject: {contains: [x]}}\n"
        "    then: {subcategory: it.advice}\n" + FALLBACK
    )
    assert found[0].startswith("rules.yaml:3:22: unknown key 'contains' in the 'subject' condition")


def test_unknown_rule_key() -> None:
    found = problems(
        "rules:\n  - name: a\n    wen: {subject: [x]}\n"
        "    then: {subcategory: it.advice}\n" + FALLBACK
    )
    assert found[0].startswith("rules.yaml:3:5: unknown key 'wen' in a rule (did you mean 'when'?)")


def test_unreachable_rule_after_catch_all() -> None:
    found = problems(
        "rules:\n"
        "  - name: everything\n"
        "    then: {subcategory: it.advice}\n"
        "  - name: never\n"
        "    when: {subject: [x]}\n"
        "    then: {subcategory: hr.tax}\n" + FALLBACK
    )
    assert found == [
        "rules.yaml:4:5: rule 'never' can never match: rule 'everything' (line 2) "
        "has no 'when' and catches every mail"
    ]


def test_duplicate_rule_name() -> None:
    found = problems(
        "rules:\n"
        "  - name: same\n    when: {subject: [x]}\n    then: {subcategory: it.advice}\n"
        "  - name: same\n    when: {subject: [y]}\n    then: {subcategory: hr.tax}\n" + FALLBACK
    )
    assert len(found) == 1
    assert found[0].startswith("rules.yaml:5:1: duplicate rule name 'same' (first used on line 2)")


def test_missing_fallback() -> None:
    found = problems(
        "rules:\n  - name: a\n    when: {subject: [x]}\n    then: {subcategory: it.advice}\n"
    )
    assert found == ["rules.yaml:1:1: the file has no 'fallback' saying where unmatched mail goes"]


def test_wrong_types() -> None:
    found = problems(
        "rules:\n"
        "  - name: a\n"
        "    when: {subject: [x, 3.5, [y]]}\n"
        "    then: {subcategory: it.advice, suppress_reply: maybe, tags: 5}\n"
        "  - just text\n" + FALLBACK
    )
    text = "\n".join(found)
    assert "rules.yaml:3:25: keywords of 'subject' must be texts, not a number" in text
    assert "rules.yaml:4:52: 'suppress_reply' must be true or false, not text" in text
    assert "rules.yaml:4:65: tags must be a list of texts, not a number" in text
    assert "rules.yaml:5:5: a rule must be a mapping, not text" in text


def test_unknown_priority_and_language() -> None:
    found = problems(
        "rules:\n  - name: a\n    when: {language: [de]}\n"
        "    then: {subcategory: it.advice, priority: critical}\n" + FALLBACK
    )
    assert found[0].startswith("rules.yaml:3:23: unknown language 'de'")
    assert found[1].startswith("rules.yaml:4:46: unknown priority 'critical'")


def test_yaml_syntax_error_located() -> None:
    found = problems("rules:\n  - name: a\n    when: {subject: [x}\n")
    assert len(found) == 1
    assert found[0].startswith("rules.yaml:3:")
    assert "YAML syntax" in found[0]


def test_duplicate_yaml_key() -> None:
    found = problems("rules: []\nrules: []\n" + FALLBACK)
    assert found[0].startswith("rules.yaml:2:1: YAML syntax")


def test_decision_fields_only_in_adjustments() -> None:
    found = problems(
        "rules:\n  - name: a\n    when: {category: [it]}\n"
        "    then: {subcategory: it.advice}\n" + FALLBACK
    )
    assert found[0].startswith("rules.yaml:3:12: 'category' can only be tested in adjustments")


def test_every_problem_reported_at_once() -> None:
    found = problems(
        "rules:\n"
        "  - name: a\n    when: {subjekt: [x]}\n    then: {subcategory: it.advice}\n"
        "  - name: b\n    when: {subject: {regex: '('}}\n    then: {subcategory: hr.nope}\n"
    )
    assert len(found) >= 4  # field, regex, subcategory, fallback


def test_unreadable_file(tmp_path: Path) -> None:
    result = load_rules(tmp_path / "missing.yaml")
    assert isinstance(result, list)
    assert str(result[0]).startswith(f"{tmp_path / 'missing.yaml'}:1:1: cannot read the rules file")


def test_aliases_share_word_lists() -> None:
    loaded = rules(
        "vocabulary:\n  pw: &pw [salasana, password]\n"
        "rules:\n  - name: a\n    when: {subject: [*pw, lösenord]}\n"
        "    then: {subcategory: it.password}\n" + FALLBACK
    )
    assert loaded.rules[0].name == "a"
