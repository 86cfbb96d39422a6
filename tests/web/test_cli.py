"""``servicedesk ticket …`` and ``servicedesk agent add`` through argparse, on both databases."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from servicedesk import ticket_cli
from servicedesk.runtime import Runtime
from store import agents
from store.models import Event, Outbox, Ticket
from tests.web.support import ingest, mail


@pytest.fixture
def cli(runtime: Runtime, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Run a command line against the runtime's database; returns (exit code)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SERVICEDESK_DATABASE__URL", db_url)
    monkeypatch.setenv("SERVICEDESK_DATA__DIR", str(runtime.settings.data_dir))
    monkeypatch.setenv("SERVICEDESK_WEB__SECRET_KEY", runtime.secret_key.decode())
    monkeypatch.delenv("SERVICEDESK_CONFIG", raising=False)
    parser = argparse.ArgumentParser(prog="servicedesk")
    ticket_cli.add_parsers(parser.add_subparsers(dest="command", required=True))

    async def run(*argv: str) -> int:
        args = parser.parse_args(argv)
        return int(await args.handler(args))

    return run


async def test_list_show_set_reply_note(cli, runtime: Runtime, capsys) -> None:
    await ingest(runtime, mail())
    await ingest(runtime, mail(subject="Verokortti", message_id="b@eksote.fi"))
    capsys.readouterr()
    assert await cli("ticket", "list") == 0
    out = capsys.readouterr().out
    assert "SD-000002" in out and "SD-000001" in out and "(2 of 2)" in out
    assert await cli("ticket", "list", "--json", "--category", "hr") == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["number"] for r in rows] == ["SD-000002"]

    assert await cli("ticket", "set", "SD-000001", "--status", "waiting", "--as", "ville") == 0
    assert "status new -> waiting" in capsys.readouterr().out
    assert await cli("ticket", "reply", "SD-000001", "Mikä laitteen sarjanumero on?",
                     "--as", "ville") == 0  # fmt: skip
    assert "mail queued" in capsys.readouterr().out
    assert await cli("ticket", "note", "1", "Sisäinen huomio", "--as", "ville") == 0
    assert await cli("ticket", "show", "SD-000001") == 0
    shown = capsys.readouterr().out
    assert "Sisäinen huomio" in shown and "status new -> waiting by ville" in shown
    assert await cli("ticket", "show", "SD-000001", "--json") == 0
    body = json.loads(capsys.readouterr().out)
    assert [e["kind"] for e in body["events"]] == ["created", "status", "agent_reply", "note"]

    assert await cli("ticket", "set", "SD-000001", "--status", "nope") == 2
    assert "unknown status" in capsys.readouterr().err
    assert await cli("ticket", "show", "SD-000404") == 4
    async with runtime.sessions() as session:
        templates = (await session.scalars(select(Outbox.template).order_by(Outbox.id))).all()
        assert templates == ["ack_new", "ack_new", "status_changed", "agent_reply"]
        actors = set(
            (await session.scalars(select(Event.actor).where(Event.kind != "created"))).all()
        )
        assert actors == {"ville"}


async def test_agent_add_prints_a_token_once_and_stores_only_its_hash(
    cli, runtime: Runtime, capsys
) -> None:
    assert await cli("agent", "add", "anna") == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("sda_") and len(token) > 40
    async with runtime.sessions() as session:
        agent = await agents.authenticate(session, token)
        assert agent is not None and agent.name == "anna"
        assert token not in agent.token_hash
    assert await cli("agent", "add", "anna") == 2  # taken
    assert await cli("agent", "add", "anna", "--rotate") == 0
    new = capsys.readouterr().out.strip()
    async with runtime.sessions() as session:
        assert await agents.authenticate(session, token) is None  # the old one died
        assert await agents.authenticate(session, new) is not None
    assert await cli("agent", "add", "bad name!") == 2


async def test_link_prints_and_rotates(cli, runtime: Runtime, capsys) -> None:
    created = await ingest(runtime, mail())
    capsys.readouterr()
    assert await cli("ticket", "link", "SD-000001") == 0
    assert capsys.readouterr().out.strip().endswith(created.path)
    assert await cli("ticket", "link", "SD-000001", "--rotate") == 0
    rotated = capsys.readouterr().out.strip()
    assert not rotated.endswith(created.path)
    async with runtime.sessions() as session:
        ticket = await session.get(Ticket, created.ticket_id)
        assert ticket is not None
