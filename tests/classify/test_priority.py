"""Adjustments raise priority and never lower it, whatever their order."""

from __future__ import annotations

from pathlib import Path

from classify.decide import decide
from classify.loader import load_rules
from ingest.parse import Unparseable, parse_mail

ROOT = Path(__file__).resolve().parents[2]


def test_patient_work_incident_stays_urgent_despite_later_high_adjustment() -> None:
    rules = load_rules(ROOT / "config" / "rules.yaml")
    assert not isinstance(rules, list)
    mail = parse_mail((ROOT / "servicedesk" / "samples" / "07-potilastieto.eml").read_bytes())
    assert not isinstance(mail, Unparseable)
    decision = decide(mail, rules)
    assert decision.subcategory == "it.incident"
    assert decision.priority == "urgent"
    assert any("urgent-patient-work" in reason for reason in decision.reasons)
