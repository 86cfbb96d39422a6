"""README.md stays true: its rules example loads and its examples pass."""

from __future__ import annotations

import re
from pathlib import Path

from classify.loader import load_rules_bytes

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_rules_example_is_valid() -> None:
    block = re.search(r"```yaml\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert block is not None
    rules = load_rules_bytes(block.group(1).encode(), "README.md")
    assert not isinstance(rules, list), [str(p) for p in rules]
    assert [rule.name for rule in rules.rules] == ["tax-subject", "edu-orders"]
