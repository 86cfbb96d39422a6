"""The rules/classify commands, called through their argparse entries."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from servicedesk import rules_cli

from .helpers import DEFAULT_RULES, LABELLED


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="servicedesk")
    sub = parser.add_subparsers(dest="command", required=True)
    rules_cli.add_parsers(sub)
    args = parser.parse_args(list(argv))
    result: Any = args.handler(args)
    if asyncio.iscoroutine(result):
        result = asyncio.run(result)
    return int(result), capsys.readouterr().out


BROKEN = """rules:
  - name: a
    when: {subject: {regex: '('}}
    then: {subcategory: hr.taxes}
"""

SMALL = """rules:
  - name: password
    when: {text: [salasana, password]}
    then: {subcategory: it.password}
fallback:
  then: {subcategory: it.advice}
examples:
  - name: fi
    subject: Salasana unohtui
    body: Unohdin salasanani.
    expect: it.password
"""


@pytest.fixture(autouse=True)
def _no_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SERVICEDESK_CONFIG", raising=False)


def test_check_ok_and_broken(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out = run(capsys, "rules", "check", str(DEFAULT_RULES))
    assert code == 0
    assert "OK" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text(BROKEN)
    code, out = run(capsys, "rules", "check", str(bad))
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == f"{bad}:1:1: the file has no 'fallback' saying where unmatched mail goes"
    assert lines[1].startswith(f"{bad}:3:29: bad regular expression '('")
    assert lines[2].startswith(f"{bad}:4:25: unknown subcategory 'hr.taxes'")


def test_rules_test_inline_and_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(SMALL)
    code, out = run(capsys, "rules", "test", str(rules))
    assert code == 0, out
    assert "1/1 examples pass" in out

    folder = tmp_path / "examples"
    folder.mkdir()
    (folder / "a.eml").write_bytes(
        b"From: a@eksote.fi\r\nTo: servicedesk@example.org\r\nSubject: Verokortti\r\n"
        b"Message-ID: <a@x>\r\n\r\nLiitteena verokortti.\r\n"
    )
    (folder / "labels.csv").write_text("file,subcategory\na.eml,hr.tax\n")
    code, out = run(capsys, "rules", "test", str(rules), "--examples", str(folder))
    assert code == 1
    assert "FAIL a.eml: category: expected hr, got it; subcategory: expected hr.tax" in out
    assert "1/2 examples pass" in out


def test_rules_test_default_rules_examples(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "rules", "test", str(DEFAULT_RULES))
    assert code == 0, out


def test_classify_json_contract(capsys: pytest.CaptureFixture[str]) -> None:
    mail = LABELLED / "mails" / "pw-fi-1.eml"
    code, out = run(capsys, "classify", "--json", "--rules", str(DEFAULT_RULES), str(mail))
    assert code == 0
    record = json.loads(out.splitlines()[0])
    assert list(record) == [
        "file", "category", "subcategory", "organisation", "language", "priority", "rule",
        "reasons",
    ]  # fmt: skip
    assert record["subcategory"] == "it.password"
    assert record["organisation"] == "etela-karjala"
    assert record["language"] == "fi"
    assert "salasana" in record["reasons"][0]


def test_classify_readable_and_bad_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    empty = tmp_path / "empty.eml"
    empty.write_bytes(b"")
    mail = LABELLED / "mails" / "inc-fi-1.eml"
    code, out = run(capsys, "classify", "--rules", str(DEFAULT_RULES), str(mail), str(empty))
    assert code == 1
    assert "queue:        it / it.incident" in out
    assert "priority:     urgent" in out
    assert "because:" in out
    assert "error:" in out


def test_accuracy_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "rules", "accuracy", "--rules", str(DEFAULT_RULES), str(LABELLED))
    assert code == 0
    assert "by subcategory:" in out
    assert "category " in out


def test_replay_uses_store_loader(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import store.replay
    from classify.examples import read_mail
    from classify.replay import PastTicket

    mail = read_mail(LABELLED / "mails" / "tax-fi-1.eml")
    seen: dict[str, Any] = {}

    async def fake_loader(settings: Any, since: Any) -> list[PastTicket]:
        seen["since"] = since
        return [
            PastTicket("SD-000001", mail, "hr", "hr.tax"),
            PastTicket("SD-000002", mail, "it", "it.advice"),
        ]

    monkeypatch.setattr(store.replay, "load_past_tickets", fake_loader)
    code, out = run(capsys, "rules", "replay", str(DEFAULT_RULES), "--since", "2025-01-01")
    assert code == 0
    assert seen["since"].year == 2025
    assert "replayed 2 tickets" in out
    assert "would change category:    1" in out
    assert "SD-000002: CATEGORY it.advice -> hr.tax" in out
