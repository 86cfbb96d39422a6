"""The command-line contracts of DESIGN.md, run as a user (or an MTA) runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(
    args: list[str], cwd: Path, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SERVICEDESK_")}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "servicedesk", *args],
        cwd=cwd, input=stdin, capture_output=True, env=environ, timeout=120,
    )  # fmt: skip


def lines(out: bytes) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.decode().splitlines() if line.strip()]


def test_ingest_corpus_twice_everything_duplicate(tmp_path: Path, corpus: list[Path]) -> None:
    first = run(["ingest", *map(str, corpus)], tmp_path)
    assert first.returncode == 0, first.stderr.decode()[-2000:]
    records = lines(first.stdout)
    assert len(records) == len(corpus)
    assert {r["action"] for r in records} <= {
        "created",
        "updated",
        "duplicate",
        "ignored",
        "quarantined",
    }
    assert all(set(r) == {"file", "action", "ticket", "reason"} for r in records)
    assert b"Traceback" not in first.stderr
    second = run(["ingest", *map(str, corpus)], tmp_path)
    assert second.returncode == 0
    assert {r["action"] for r in lines(second.stdout)} == {"duplicate"}
    assert (tmp_path / "servicedesk-data" / "servicedesk.db").is_file()


def test_ingest_from_stdin_like_an_mta(tmp_path: Path) -> None:
    raw = b"From: a@eksote.fi\r\nTo: servicedesk@example.org\r\nSubject: Hiiri rikki\r\nMessage-ID: <p1@x>\r\n\r\nHiiri ei toimi"
    result = run(["ingest", "-"], tmp_path, stdin=raw)
    assert result.returncode == 0
    (record,) = lines(result.stdout)
    assert (
        record["file"] == "-" and record["action"] == "created" and record["ticket"] == "SD-000001"
    )


def test_ingest_maildir(tmp_path: Path) -> None:
    maildir = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "new" / "1.host").write_bytes(
        b"From: a@b.fi\r\nSubject: x\r\nMessage-ID: <md1@x>\r\n\r\nbody"
    )
    result = run(["ingest", "--mark-done", str(maildir)], tmp_path)
    assert result.returncode == 0
    assert lines(result.stdout)[0]["action"] == "created"
    assert not list((maildir / "new").iterdir())
    assert [p.name for p in (maildir / "cur").iterdir()] == ["1.host:2,S"]


def test_database_unreachable_exits_75_for_mta_retry(tmp_path: Path) -> None:
    env = {"SERVICEDESK_DATABASE__URL": "postgresql://postgres@127.0.0.1:1/none"}
    result = run(["ingest", "-"], tmp_path, stdin=b"From: a@b.fi\r\n\r\nx", env=env)
    assert result.returncode == 75, result.stderr.decode()[-500:]
    assert b"try again later" in result.stderr


def test_bad_config_is_refused_with_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[smtp]\nhost = "mx"\nport = "x"\n')
    result = run(["ingest", "--config", str(config), "-"], tmp_path, stdin=b"")
    assert result.returncode == 78
    assert f"{config}:3: smtp.port".encode() in result.stderr


@pytest.mark.parametrize("repeat", [1, 2])
def test_demo_runs_on_a_fresh_folder_and_again(tmp_path: Path, repeat: int) -> None:
    for _ in range(repeat):
        result = run(["demo"], tmp_path)
        assert result.returncode == 0, result.stderr.decode()[-2000:]
    out = result.stdout.decode()
    assert "SD-000012" in out and "pohjois-karjala-edu" in out
    assert "quarantined" in out or "duplicate" in out
