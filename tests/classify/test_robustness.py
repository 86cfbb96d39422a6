"""Whatever a mail contains, routing returns a valid decision and never raises."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from classify.categories import ALL_SUBCATEGORIES, LANGUAGES, PRIORITIES
from classify.decide import decide
from classify.loader import load_rules

from .helpers import DEFAULT_RULES, mail

RULES = load_rules(DEFAULT_RULES)


@settings(max_examples=200, deadline=None)
@given(subject=st.text(max_size=200), body=st.text(max_size=2000))
def test_any_text_routes_somewhere_valid(subject: str, body: str) -> None:
    assert not isinstance(RULES, list)
    d = decide(mail(subject, body), RULES)
    assert d.subcategory in ALL_SUBCATEGORIES
    assert d.subcategory.startswith(d.category + ".")
    assert d.priority in PRIORITIES
    assert d.language in LANGUAGES
    assert d.reasons and d.reasons[0].startswith(f"rule '{d.rule}'")
