"""``servicedesk quarantine list|show|release|drop`` on both databases."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import Callable
from typing import Any

import pytest

from ingest.outcome import Action, SourceRef
from servicedesk import quarantine_cli
from servicedesk.runtime import open_runtime
from servicedesk.settings import Settings
from store import quarantine
from tests.hostile import mails


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="servicedesk")
    quarantine_cli.add_parsers(parser.add_subparsers(dest="command", required=True))
    return parser


def _run(
    argv: list[str], env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    args = _parser().parse_args(argv)
    old = dict(os.environ)
    os.environ.update(env)
    try:
        code = asyncio.run(args.handler(args))
    finally:
        os.environ.clear()
        os.environ.update(old)
    return code, capsys.readouterr().out


def _env(settings_env: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in settings_env.items()}


async def test_list_show_release_drop(
    db_url: str, make_settings: Callable[..., Settings], tmp_path: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    # A recipients limit of 3 quarantines the mail; raising it is "the fix".
    strict = make_settings(db_url, limits={"max_recipients": 3})
    raw = mails.recipients_bomb(10, mid="held-1")
    async with open_runtime(strict) as rt:
        first = await rt.pipeline.process(raw, SourceRef("imap", "INBOX", "INBOX:1:7"))
        other = await rt.pipeline.process(
            mails.recipients_bomb(10, "held-2"), SourceRef("file", "x")
        )
    assert first.action is Action.QUARANTINED and other.action is Action.QUARANTINED
    capsys.readouterr()  # the pipeline's own log lines
    env = {
        "SERVICEDESK_DATA__DIR": str(tmp_path / "data"),
        "SERVICEDESK_DATABASE__URL": db_url,
        "SERVICEDESK_WEB__SECRET_KEY": "test-secret-key",
    }
    code, out = await asyncio.to_thread(
        _run, ["quarantine", "list", "--json"], env | {"SERVICEDESK_LIMITS__MAX_RECIPIENTS": "3"},
        capsys,
    )  # fmt: skip
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["id"] for r in rows] == [first.intake_id, other.intake_id]
    assert rows[0]["sender"].endswith("<maija.virtanen@eksote.fi>")
    assert rows[0]["subject"] == "Kaikille" and "recipients" in rows[0]["reason"]

    code, out = await asyncio.to_thread(
        _run, ["quarantine", "show", str(first.intake_id)], env, capsys
    )
    assert code == 0 and "reason:" in out and f"{len(raw)} bytes" in out and "Message-ID" in out

    # Release after the fix: the old row must not block it as a duplicate.
    code, out = await asyncio.to_thread(
        _run, ["quarantine", "release", "--json", str(first.intake_id)], env, capsys
    )
    released = json.loads(out)
    assert code == 0 and released["action"] == "created" and released["ticket"]

    code, out = await asyncio.to_thread(
        _run, ["quarantine", "drop", "--note", "spam", str(other.intake_id)], env, capsys
    )
    assert code == 0 and "dropped" in out
    code, out = await asyncio.to_thread(_run, ["quarantine", "list", "--json"], env, capsys)
    assert out.strip() == ""  # nothing held any more
    code, out = await asyncio.to_thread(
        _run, ["quarantine", "list", "--json", "--state", "dropped", "--state", "released"], env,
        capsys,
    )  # fmt: skip
    states = {json.loads(line)["id"]: json.loads(line)["state"] for line in out.splitlines()}
    assert states == {first.intake_id: "released", other.intake_id: "dropped"}
    code, out = await asyncio.to_thread(
        _run, ["quarantine", "release", str(other.intake_id)], env, capsys
    )
    assert code == 1 and "dropped" in out


async def test_release_that_crashed_midway_can_be_retried(
    db_url: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(db_url, limits={"max_recipients": 3})
    async with open_runtime(settings) as rt:
        held = await rt.pipeline.process(
            mails.recipients_bomb(10, "crash-1"), SourceRef("file", "x")
        )
        assert held.intake_id is not None

        async def crashing(raw: bytes, source: SourceRef) -> Any:
            raise RuntimeError("power cut")

        with pytest.raises(RuntimeError):
            await quarantine.release(rt.sessions, held.intake_id, crashing)
        async with rt.sessions() as session:
            listed = await quarantine.list_entries(session)
        assert [(e.id, e.state) for e in listed] == [(held.intake_id, "releasing")]
    fixed = make_settings(db_url)
    async with open_runtime(fixed) as rt:
        outcome = await quarantine.release(rt.sessions, held.intake_id, rt.pipeline.process)
        assert outcome.action is Action.CREATED
        again = await rt.pipeline.process(
            mails.recipients_bomb(10, "crash-1"), SourceRef("file", "y")
        )
        assert again.action is Action.DUPLICATE
