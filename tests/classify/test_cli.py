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


async def test_replay_on_a_real_store(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    db_url: str,
) -> None:
    """Tickets stored by the pipeline, replayed with candidate rules that drop the password rule."""
    from ingest.outcome import SourceRef
    from servicedesk.rules_cli import replay_command
    from servicedesk.runtime import open_runtime
    from servicedesk.settings import load_settings

    monkeypatch.setenv("SERVICEDESK_DATABASE__URL", db_url)
    monkeypatch.setenv("SERVICEDESK_DATA__DIR", str(tmp_path / "data"))
    samples = Path(__file__).resolve().parents[2] / "servicedesk" / "samples"
    async with open_runtime(load_settings(None)) as runtime:
        for name in ("01-salasana.eml", "04-verokortti.eml"):
            raw = (samples / name).read_bytes()
            await runtime.pipeline.process(raw, SourceRef("file", name))
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text(
        "version: 1\nrules:\n  - name: tax\n    when: {subject: [verokortti]}\n"
        "    then: {subcategory: hr.tax}\nfallback:\n  name: rest\n"
        "  then: {subcategory: it.advice}\n"
    )
    args = argparse.Namespace(file=str(candidate), since="2020-01-01", config=None)
    assert await replay_command(args) == 0
    out = capsys.readouterr().out
    out = out[out.index("replayed 2 tickets") :]  # unconfigured structlog also prints here
    assert "SD-000001" in out and "it.password" in out and "it.advice" in out
    assert "SD-000002" not in out
