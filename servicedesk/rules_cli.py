"""``servicedesk rules …`` and ``servicedesk classify``: the admin's tools for the rules file.

Every handler takes the parsed arguments, prints plain text (or JSON lines
where DESIGN.md says so) and returns the exit code; nothing here writes to
the store, so all of it is safe to run against production rules.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from classify.decide import decide
from classify.decision import Decision
from classify.examples import (
    Accuracy,
    Example,
    MailFileError,
    folder_examples,
    inline_examples,
    read_mail,
    run,
)
from classify.loader import load_rules
from classify.model import RuleSet
from classify.replay import replay
from servicedesk.paths import DEFAULT_RULES, PROJECT_ROOT

DEFAULT_LABELLED = PROJECT_ROOT / "tests" / "labelled"


@dataclass(frozen=True, slots=True)
class _Context:
    rules_path: str
    organisations: Mapping[str, str]
    default_language: str


def _context(args: argparse.Namespace) -> _Context:
    """Rules path and organisation map from settings; ``--rules``/FILE wins for the path.

    Settings work without any config file (embedded defaults), so these
    commands run on an admin's laptop as well as on the server.
    """
    explicit = getattr(args, "rules", None) or getattr(args, "file", None)
    from servicedesk.settings import load_settings

    settings = load_settings(getattr(args, "config", None))
    return _Context(
        str(explicit or settings.rules.path),
        settings.domain_map(),
        settings.notify.default_language,
    )


def _load(path: str) -> RuleSet | None:
    result = load_rules(path)
    if isinstance(result, list):
        for problem in result:
            print(problem)
        print(f"{path}: {len(result)} problem(s); nothing was changed")
        return None
    return result


def check_command(args: argparse.Namespace) -> int:
    """``rules check FILE``: every problem as ``file:line:col: message``; exit 0/1."""
    rules = _load(args.file)
    if rules is None:
        return 1
    print(
        f"{args.file}: OK, {len(rules.rules)} rules, {len(rules.adjustments)} adjustments, "
        f"{len(rules.examples)} examples, version {rules.version}"
    )
    return 0


def test_command(args: argparse.Namespace) -> int:
    """``rules test FILE [--examples DIR]``: the admin's regression suite; exit 1 on a mismatch."""
    ctx = _context(args)
    rules = _load(ctx.rules_path)
    if rules is None:
        return 1
    examples: list[Example] = inline_examples(rules)
    problems: list[str] = []
    folders = list(args.examples or [])
    if rules.examples_dir:
        folders.insert(0, str(Path(ctx.rules_path).parent / rules.examples_dir))
    for folder in folders:
        found, trouble = folder_examples(folder)
        examples.extend(found)
        problems.extend(trouble)
    for line in problems:
        print(line)
    if not examples:
        print("no examples found: add 'examples:' to the rules file or pass --examples DIR")
        return 1 if problems else 0
    failed = 0
    for outcome in run(rules, examples, ctx.organisations):
        if outcome.ok:
            continue
        failed += 1
        print(f"FAIL {outcome.example.name}: " + "; ".join(outcome.mismatches))
        for reason in outcome.decision.reasons:
            print(f"     {reason}")
    print(f"{len(examples) - failed}/{len(examples)} examples pass with rules {rules.version}")
    return 1 if failed or problems else 0


def accuracy_command(args: argparse.Namespace) -> int:
    """``rules accuracy [--rules FILE] [DIR]``: accuracy by category and subcategory."""
    ctx = _context(args)
    rules = _load(ctx.rules_path)
    if rules is None:
        return 1
    examples, problems = folder_examples(args.dir or DEFAULT_LABELLED)
    for line in problems:
        print(line)
    if not examples:
        print("no labelled mails found")
        return 1
    accuracy = Accuracy.of(run(rules, examples, ctx.organisations))
    print(f"{len(examples)} labelled mails, rules {ctx.rules_path} ({rules.version})")
    for line in accuracy.lines():
        print(line)
    return 1 if problems else 0


def decision_record(name: str, decision: Decision) -> dict[str, Any]:
    """The JSON line of DESIGN.md's ``classify --json`` contract."""
    return {
        "file": name,
        "category": decision.category,
        "subcategory": decision.subcategory,
        "organisation": decision.organisation,
        "language": decision.language,
        "priority": decision.priority,
        "rule": decision.rule,
        "reasons": list(decision.reasons),
    }


def explain(name: str, decision: Decision) -> list[str]:
    """The readable form of a decision, for an admin at a terminal."""
    lines = [
        name,
        f"  queue:        {decision.category} / {decision.subcategory}",
        f"  organisation: {decision.organisation}",
        f"  language:     {decision.language}",
        f"  priority:     {decision.priority}",
        f"  rule:         {decision.rule} (rules version {decision.rules_version})",
    ]
    if decision.tags:
        lines.append(f"  tags:         {', '.join(decision.tags)}")
    if decision.template:
        lines.append(f"  template:     {decision.template}")
    lines.append("  because:")
    lines += [f"    - {reason}" for reason in decision.reasons]
    return lines


def classify_command(args: argparse.Namespace) -> int:
    """``classify [--json] [--rules FILE] MAIL...``: route mail files without storing anything."""
    ctx = _context(args)
    rules = _load(ctx.rules_path)
    if rules is None:
        return 1
    failed = False
    for name in args.mail:
        try:
            mail = read_mail(name)
        except MailFileError as exc:
            failed = True
            if args.json:
                print(json.dumps({"file": name, "error": str(exc)}, ensure_ascii=False))
            else:
                print(f"{name}\n  error: {exc}")
            continue
        decision = decide(mail, rules, ctx.organisations, ctx.default_language)
        if args.json:
            print(json.dumps(decision_record(name, decision), ensure_ascii=False), flush=True)
        else:
            print("\n".join(explain(name, decision)))
    return 1 if failed else 0


async def replay_command(args: argparse.Namespace) -> int:
    """``rules replay FILE [--since DATE]``: what the candidate would change; writes nothing."""
    from servicedesk.runtime import open_runtime
    from servicedesk.settings import load_settings
    from store.replay import load_past_tickets

    rules = _load(args.file)
    if rules is None:
        return 1
    settings = load_settings(getattr(args, "config", None))
    since = _utc(args.since) if args.since else None
    async with open_runtime(settings) as runtime:
        tickets = await load_past_tickets(runtime.sessions, runtime.numbering, since)
    report = replay(rules, tickets, settings.domain_map())
    print("\n".join(report.lines()))
    return 0


def _utc(text: str) -> datetime:
    """A --since date; without an offset it means UTC, as the store keeps times."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _date(text: str) -> str:
    try:
        datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc
    return text


def add_parsers(subparsers: Any) -> None:
    """Register ``rules {check,test,accuracy,replay}`` and ``classify`` on the main parser."""
    config = argparse.ArgumentParser(add_help=False)
    config.add_argument("--config", help="TOML config file (default: ./servicedesk.toml)")

    rules = subparsers.add_parser("rules", help="check, test, measure and replay routing rules")
    sub = rules.add_subparsers(dest="rules_command", required=True)

    check = sub.add_parser("check", help="validate a rules file (exit 0 when usable)")
    check.add_argument("file", help="rules YAML file")
    check.set_defaults(handler=check_command)

    test = sub.add_parser("test", parents=[config], help="run example mails against a rules file")
    test.add_argument("file", help="rules YAML file")
    test.add_argument(
        "--examples",
        action="append",
        metavar="DIR",
        help="folder of .eml files with labels.csv (file,subcategory,…); repeatable",
    )
    test.set_defaults(handler=test_command)

    accuracy = sub.add_parser(
        "accuracy", parents=[config], help="accuracy by category/subcategory on labelled mail"
    )
    accuracy.add_argument("--rules", help="rules file (default: rules.path of the config)")
    accuracy.add_argument("dir", nargs="?", help=f"labelled folder (default: {DEFAULT_LABELLED})")
    accuracy.set_defaults(handler=accuracy_command)

    replay_parser = sub.add_parser(
        "replay", parents=[config], help="classify stored tickets with candidate rules (dry run)"
    )
    replay_parser.add_argument("file", help="candidate rules YAML file")
    replay_parser.add_argument("--since", type=_date, help="only tickets created since DATE")
    replay_parser.set_defaults(handler=replay_command)

    classify = subparsers.add_parser(
        "classify", parents=[config], help="show how mail files would be routed"
    )
    classify.add_argument("--json", action="store_true", help="one JSON object per line")
    classify.add_argument("--rules", help=f"rules file (default: rules.path, {DEFAULT_RULES})")
    classify.add_argument("mail", nargs="+", help=".eml files")
    classify.set_defaults(handler=classify_command)
