"""Replay: what a candidate rules file would have done to tickets already routed.

This is the admin's dry run against real traffic: it changes nothing, it
only counts which tickets would move and where, so a rule that would pull
payroll mail into the IT queue is seen before it goes live.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from classify.decide import decide
from classify.model import RuleSet
from classify.organisation import DEFAULT_ORGANISATIONS
from ingest.mail import InboundMail


@dataclass(frozen=True, slots=True)
class PastTicket:
    """A stored ticket's first mail and the routing it got at the time."""

    number: str
    mail: InboundMail
    category: str
    subcategory: str


@dataclass(frozen=True, slots=True)
class Change:
    number: str
    old_subcategory: str
    new_subcategory: str
    old_category: str
    new_category: str
    rule: str

    @property
    def category_changed(self) -> bool:
        return self.old_category != self.new_category


@dataclass(slots=True)
class ReplayReport:
    rules_version: str
    total: int = 0
    changes: list[Change] = field(default_factory=list)

    @property
    def category_changes(self) -> int:
        return sum(1 for c in self.changes if c.category_changed)

    @property
    def subcategory_changes(self) -> int:
        return len(self.changes)

    def transitions(self) -> Counter[tuple[str, str]]:
        return Counter((c.old_subcategory, c.new_subcategory) for c in self.changes)

    def lines(self, limit: int = 50) -> list[str]:
        out = [
            f"replayed {self.total} tickets with rules {self.rules_version}",
            f"would change category:    {self.category_changes}",
            f"would change subcategory: {self.subcategory_changes}",
        ]
        if self.changes:
            out.append("moves (from -> to: count):")
            for (old, new), count in self.transitions().most_common():
                out.append(f"  {old} -> {new}: {count}")
            out.append("tickets:")
            for change in self.changes[:limit]:
                marker = "CATEGORY " if change.category_changed else ""
                out.append(
                    f"  {change.number}: {marker}{change.old_subcategory} -> "
                    f"{change.new_subcategory} (rule {change.rule})"
                )
            if len(self.changes) > limit:
                out.append(f"  … and {len(self.changes) - limit} more")
        return out


def replay(
    candidate: RuleSet,
    past: Iterable[PastTicket],
    organisations: Mapping[str, str] = DEFAULT_ORGANISATIONS,
) -> ReplayReport:
    """Classify each past ticket's mail again; nothing is written anywhere."""
    report = ReplayReport(rules_version=candidate.version)
    for ticket in past:
        report.total += 1
        decision = decide(ticket.mail, candidate, organisations)
        if decision.subcategory != ticket.subcategory or decision.category != ticket.category:
            report.changes.append(
                Change(
                    number=ticket.number,
                    old_subcategory=ticket.subcategory,
                    new_subcategory=decision.subcategory,
                    old_category=ticket.category,
                    new_category=decision.category,
                    rule=decision.rule,
                )
            )
    return report
