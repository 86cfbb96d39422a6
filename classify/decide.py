"""One mail + rules -> Decision, with the reasons an agent reads in the queue.

Order matters and is documented for admins: organisation from the sender's
domain and the language are settled first (so rules can test them), then the
first matching routing rule (or the fallback) sets the queue, then every
matching adjustment may raise priority, add tags or change the template.
"""

from __future__ import annotations

from collections.abc import Mapping

from classify.decision import Decision
from classify.features import MailFeatures
from classify.language import detect_language
from classify.model import Action, Rule, RuleSet
from classify.organisation import DEFAULT_ORGANISATIONS, organisation_for
from ingest.mail import InboundMail


def _first_match(rules: RuleSet, f: MailFeatures) -> tuple[Rule, tuple[str, ...]]:
    for rule in rules.rules:
        evidence = rule.when.test(f)
        if evidence is not None:
            return rule, evidence
    return rules.fallback, ("no rule matched; fallback",)


def decide(
    mail: InboundMail,
    rules: RuleSet,
    organisations: Mapping[str, str] = DEFAULT_ORGANISATIONS,
    default_language: str = "fi",
) -> Decision:
    """Route one mail; pure (no I/O), so it runs the same in the daemon and in tests."""
    f = MailFeatures.of(mail)
    domain = mail.sender.domain if mail.sender else ""
    f.organisation = organisation_for(domain, organisations) if domain else "unknown"
    f.language = detect_language(
        (mail.subject, f.body), default=rules.default_language or default_language
    )
    rule, evidence = _first_match(rules, f)
    action = rule.action
    f.category, f.subcategory = action.category, action.subcategory
    reasons = [f"rule '{rule.name}': " + "; ".join(evidence)]
    priority = action.priority or rules.default_priority
    state = _State(
        organisation=action.organisation or f.organisation,
        priority=priority,
        tags=list(action.tags),
        template=action.template,
        suppress=bool(action.suppress_reply),
    )
    if action.organisation:
        reasons.append(f"rule '{rule.name}' sets organisation {action.organisation}")
    for adjustment in rules.adjustments:
        # Adjustments see the organisation as decided so far (a rule may have set it).
        f.organisation = state.organisation
        found = adjustment.when.test(f)
        if found is None:
            continue
        changes = state.apply(adjustment.action)
        reasons.append(
            f"adjustment '{adjustment.name}' ({', '.join(changes) or 'no change'}): "
            + "; ".join(found)
        )
    return Decision(
        category=action.category,
        subcategory=action.subcategory,
        organisation=state.organisation,
        priority=state.priority,
        language=f.language,
        rule=rule.name,
        reasons=tuple(reasons),
        rules_version=rules.version,
        tags=tuple(dict.fromkeys(state.tags)),
        template=state.template,
        suppress_reply=state.suppress,
    )


_RANK = {"low": 0, "normal": 1, "high": 2, "urgent": 3}


class _State:
    """The adjustable part of a decision while adjustments run in order."""

    def __init__(
        self, organisation: str, priority: str, tags: list[str], template: str, suppress: bool
    ) -> None:
        self.organisation = organisation
        self.priority = priority
        self.tags = tags
        self.template = template
        self.suppress = suppress

    def apply(self, action: Action) -> list[str]:
        changes: list[str] = []
        # Adjustments only ever raise priority: a later, broader adjustment
        # ("urgent words" -> high) must not undo an earlier "urgent".
        if action.priority and _RANK.get(action.priority, 0) > _RANK.get(self.priority, 0):
            self.priority = action.priority
            changes.append(f"priority {action.priority}")
        if action.organisation and action.organisation != self.organisation:
            self.organisation = action.organisation
            changes.append(f"organisation {action.organisation}")
        new_tags = [t for t in action.tags if t not in self.tags]
        if new_tags:
            self.tags.extend(new_tags)
            changes.append("tags " + ", ".join(new_tags))
        if action.template and action.template != self.template:
            self.template = action.template
            changes.append(f"template {action.template}")
        if action.suppress_reply is not None and action.suppress_reply != self.suppress:
            self.suppress = action.suppress_reply
            changes.append("no auto-reply" if self.suppress else "auto-reply on")
        return changes
