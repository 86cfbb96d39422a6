"""Example mails with expected labels: the admin's regression suite and our accuracy figure.

Two sources share one code path: examples written into the rules file and a
folder of ``.eml`` files with a ``labels.csv`` (``file,subcategory`` plus
optional ``category,priority,organisation,language,rule`` columns).  Keeping
one path means ``rules test`` and ``rules accuracy`` can never disagree.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from classify.categories import category_of
from classify.decide import decide
from classify.decision import Decision
from classify.model import Expectation, InlineExample, RuleSet
from classify.organisation import DEFAULT_ORGANISATIONS
from ingest.mail import Address, InboundMail
from ingest.parse import Unparseable, parse_mail

LABELS_FILE = "labels.csv"
_EXPECT_COLUMNS = ("subcategory", "category", "priority", "organisation", "language", "rule")


class MailFileError(ValueError):
    """A mail file that cannot be read or parsed; the message names the file."""


def read_mail(path: str | Path) -> InboundMail:
    """Parse one ``.eml`` file with the same parser the daemon uses."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise MailFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    parsed = parse_mail(raw)
    if isinstance(parsed, Unparseable):
        raise MailFileError(f"{path}: cannot parse: {parsed.reason}")
    return parsed


def inline_mail(example: InlineExample) -> InboundMail:
    """An InboundMail from an example written in the rules file."""
    return InboundMail(
        message_id=f"example-{example.name}",
        subject=example.subject,
        sender=Address(example.sender.lower()),
        to=tuple(Address(t.lower()) for t in example.to),
        cc=(),
        reply_to=(),
        in_reply_to="",
        references=(),
        date="",
        text=example.body,
        html="",
        headers={"subject": example.subject, "from": example.sender},
    )


@dataclass(frozen=True, slots=True)
class Example:
    name: str
    mail: InboundMail
    expect: Expectation


@dataclass(frozen=True, slots=True)
class Outcome:
    example: Example
    decision: Decision
    mismatches: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.mismatches


def inline_examples(rules: RuleSet) -> list[Example]:
    return [
        Example(f"{rules.path}:{e.line} {e.name}", inline_mail(e), e.expect) for e in rules.examples
    ]


def folder_examples(directory: str | Path) -> tuple[list[Example], list[str]]:
    """Examples listed in ``labels.csv`` of ``directory``, plus problems reading them."""
    folder = Path(directory)
    labels = folder / LABELS_FILE
    problems: list[str] = []
    try:
        text = labels.read_text(encoding="utf-8")
    except OSError as exc:
        return [], [f"{labels}: cannot read: {exc.strerror or exc}"]
    examples: list[Example] = []
    reader = csv.DictReader(text.splitlines())
    if not reader.fieldnames or "file" not in reader.fieldnames:
        return [], [f"{labels}:1: the first line must name the columns, starting with 'file'"]
    for number, row in enumerate(reader, start=2):
        name = (row.get("file") or "").strip()
        if not name:
            problems.append(f"{labels}:{number}: no file name")
            continue
        expect = Expectation(**{c: (row.get(c) or "").strip() for c in _EXPECT_COLUMNS})
        try:
            mail = read_mail(folder / name)
        except MailFileError as exc:
            problems.append(f"{labels}:{number}: {exc}")
            continue
        examples.append(Example(name, mail, expect))
    return examples, problems


def check(decision: Decision, expect: Expectation) -> tuple[str, ...]:
    """Each expected field that came out differently, as 'field: expected X, got Y'."""
    wanted = {
        "category": expect.category
        or (category_of(expect.subcategory) if expect.subcategory else ""),
        "subcategory": expect.subcategory,
        "priority": expect.priority,
        "organisation": expect.organisation,
        "language": expect.language,
        "rule": expect.rule,
    }
    out: list[str] = []
    for key, value in wanted.items():
        actual = getattr(decision, key)
        if value and value != actual:
            out.append(f"{key}: expected {value}, got {actual}")
    return tuple(out)


def run(
    rules: RuleSet,
    examples: Iterable[Example],
    organisations: Mapping[str, str] = DEFAULT_ORGANISATIONS,
) -> list[Outcome]:
    outcomes = []
    for example in examples:
        decision = decide(example.mail, rules, organisations)
        outcomes.append(Outcome(example, decision, check(decision, example.expect)))
    return outcomes


@dataclass(slots=True)
class Tally:
    correct: int = 0
    total: int = 0

    @property
    def rate(self) -> float:
        return self.correct / self.total if self.total else 0.0


@dataclass(slots=True)
class Accuracy:
    """Accuracy by the *expected* label, so a small category cannot hide in the total."""

    category: Tally = field(default_factory=Tally)
    subcategory: Tally = field(default_factory=Tally)
    language: Tally = field(default_factory=Tally)
    by_category: dict[str, Tally] = field(default_factory=dict)
    by_subcategory: dict[str, Tally] = field(default_factory=dict)
    wrong: list[Outcome] = field(default_factory=list)

    @classmethod
    def of(cls, outcomes: Iterable[Outcome]) -> Accuracy:
        acc = cls()
        for outcome in outcomes:
            expect, decision = outcome.example.expect, outcome.decision
            if not expect.subcategory:
                continue
            cat = category_of(expect.subcategory)
            cat_ok = decision.category == cat
            sub_ok = decision.subcategory == expect.subcategory
            for tally, ok in (
                (acc.category, cat_ok),
                (acc.by_category.setdefault(cat, Tally()), cat_ok),
                (acc.subcategory, sub_ok),
                (acc.by_subcategory.setdefault(expect.subcategory, Tally()), sub_ok),
            ):
                tally.total += 1
                tally.correct += ok
            if expect.language:
                acc.language.total += 1
                acc.language.correct += decision.language == expect.language
            if not sub_ok:
                acc.wrong.append(outcome)
        return acc

    def lines(self) -> list[str]:
        """A plain-text report for the terminal and README."""

        def pct(t: Tally) -> str:
            return f"{t.rate * 100:5.1f}%  ({t.correct}/{t.total})"

        out = [f"category     {pct(self.category)}", f"subcategory  {pct(self.subcategory)}"]
        if self.language.total:
            out.append(f"language     {pct(self.language)}")
        out.append("")
        out.append("by category:")
        out += [f"  {name:<22} {pct(t)}" for name, t in sorted(self.by_category.items())]
        out.append("by subcategory:")
        out += [f"  {name:<22} {pct(t)}" for name, t in sorted(self.by_subcategory.items())]
        if self.wrong:
            out.append("misrouted:")
            for o in self.wrong:
                out.append(
                    f"  {o.example.name}: expected {o.example.expect.subcategory}, "
                    f"got {o.decision.subcategory} (rule {o.decision.rule})"
                )
        return out
