"""The pipeline end to end on a real database: tickets, replies, strangers, duplicates, failures."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

from ingest.outcome import Action, SourceRef
from servicedesk.runtime import Runtime, open_runtime
from servicedesk.settings import Settings
from store.models import Event, Intake, Message, Outbox, Participant, RawMessage, Ticket


def make_mail(
    sender: str = "maija@eksote.fi",
    subject: str = "Tulostin ei toimi",
    body: str = "Hei, tulostin ei tulosta.",
    message_id: str = "m1@eksote.fi",
    extra: str = "",
    to: str = "servicedesk@example.org",
) -> bytes:
    lines = [f"From: {sender}", f"To: {to}", f"Subject: {subject}"]
    if message_id:
        lines.append(f"Message-ID: <{message_id}>")
    head = "\r\n".join(lines) + "\r\n" + extra
    return (head + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body).encode()


async def count(runtime: Runtime, model: Any, *where: Any) -> int:
    async with runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def src(name: str = "test", key: str = "") -> SourceRef:
    return SourceRef("file", name, key)


async def test_new_mail_creates_ticket_with_everything_in_one_go(runtime: Runtime) -> None:
    outcome = await runtime.pipeline.process(make_mail(extra="Cc: pomo@eksote.fi\r\n"), src())
    assert outcome.action is Action.CREATED
    assert outcome.ticket == "SD-000001"
    async with runtime.sessions() as session:
        ticket = (await session.scalars(select(Ticket))).one()
        assert ticket.organisation == "etela-karjala"
        assert ticket.requester_email == "maija@eksote.fi"
        assert ticket.status == "new"
        roles = dict((await session.execute(select(Participant.email, Participant.role))).all())
        assert roles == {"maija@eksote.fi": "requester", "pomo@eksote.fi": "cc"}
        outbox = (await session.scalars(select(Outbox))).one()
        assert (outbox.template, outbox.recipient) == ("ack_new", "maija@eksote.fi")
    assert await count(runtime, RawMessage) == 1
    assert await count(runtime, Event, Event.kind == "created") == 1


async def test_same_message_id_twice_is_duplicate(runtime: Runtime) -> None:
    assert (await runtime.pipeline.process(make_mail(), src("a"))).action is Action.CREATED
    again = await runtime.pipeline.process(make_mail(body="different bytes"), src("b"))
    assert again.action is Action.DUPLICATE
    assert await count(runtime, Ticket) == 1


async def test_no_message_id_dedups_by_raw_hash(runtime: Runtime) -> None:
    raw = make_mail(message_id="")
    assert (await runtime.pipeline.process(raw, src())).action is Action.CREATED
    assert (await runtime.pipeline.process(raw, src())).action is Action.DUPLICATE
    other = make_mail(message_id="", body="toinen viesti")
    assert (await runtime.pipeline.process(other, src())).action is Action.CREATED


async def test_same_source_key_is_duplicate_even_if_bytes_differ(runtime: Runtime) -> None:
    key = "main:1:7"
    assert (
        await runtime.pipeline.process(make_mail(message_id="a@x"), src(key=key))
    ).action is Action.CREATED
    again = await runtime.pipeline.process(make_mail(message_id="b@x"), src(key=key))
    assert again.action is Action.DUPLICATE


async def test_auto_reply_is_ignored_and_raw_kept(runtime: Runtime) -> None:
    outcome = await runtime.pipeline.process(
        make_mail(extra="Auto-Submitted: auto-replied\r\n"), src()
    )
    assert outcome.action is Action.IGNORED
    assert "Auto-Submitted" in outcome.reason
    assert await count(runtime, Ticket) == 0
    assert await count(runtime, Outbox) == 0
    assert await count(runtime, Intake, Intake.action == "ignored") == 1
    assert await count(runtime, RawMessage) == 1


async def test_unparseable_is_quarantined_with_raw_bytes(runtime: Runtime) -> None:
    outcome = await runtime.pipeline.process(b"\x00\x01garbage", src())
    assert outcome.action is Action.QUARANTINED
    async with runtime.sessions() as session:
        row = (await session.scalars(select(Intake))).one()
        raw = await session.get(RawMessage, row.raw_sha256)
        assert raw is not None and raw.data == b"\x00\x01garbage"
        assert row.quarantine_state == "held" and row.reason


async def test_oversize_mail_is_quarantined(
    db_url: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(db_url, limits={"max_message_bytes": 2048})
    async with open_runtime(settings) as runtime:
        outcome = await runtime.pipeline.process(make_mail(body="x" * 5000), src())
    assert outcome.action is Action.QUARANTINED
    assert "over the limit" in outcome.reason


async def test_reply_from_requester_updates_ticket_without_quote(runtime: Runtime) -> None:
    await runtime.pipeline.process(make_mail(), src())
    reply = make_mail(
        subject="Re: [SD-000001] Tulostin ei toimi",
        message_id="m2@eksote.fi",
        body="Nyt toimii taas, kiitos!\r\n\r\nOn Mon, 23 Nov 2026 at 08:10, Service desk wrote:\r\n> Hei\r\n",
    )
    outcome = await runtime.pipeline.process(reply, src())
    assert outcome.action is Action.UPDATED and outcome.ticket == "SD-000001"
    async with runtime.sessions() as session:
        stored = (await session.scalars(select(Message).order_by(Message.id.desc()))).first()
        assert stored is not None
        assert stored.text == "Nyt toimii taas, kiitos!"
        assert "wrote:" in stored.full_text
        templates = (await session.scalars(select(Outbox.template).order_by(Outbox.id))).all()
        assert templates == ["ack_new", "ack_reply"]


async def test_reply_by_references_without_tag(runtime: Runtime) -> None:
    await runtime.pipeline.process(make_mail(), src())
    reply = make_mail(
        subject="Re: tulostin", message_id="m3@eksote.fi", extra="In-Reply-To: <m1@eksote.fi>\r\n"
    )
    outcome = await runtime.pipeline.process(reply, src())
    assert outcome.action is Action.UPDATED and outcome.ticket == "SD-000001"


async def test_stranger_with_right_ticket_number_changes_nothing_visible(runtime: Runtime) -> None:
    await runtime.pipeline.process(make_mail(), src())
    async with runtime.sessions() as session:
        before = (await session.scalars(select(Ticket))).one()
        status_before = before.status
    spoof = make_mail(
        sender="mallory@evil.example", subject="Re: [SD-000001] close this", message_id="s@evil"
    )
    outcome = await runtime.pipeline.process(spoof, src())
    assert outcome.action is Action.UPDATED
    assert "not a participant" in outcome.reason
    async with runtime.sessions() as session:
        ticket = (await session.scalars(select(Ticket))).one()
        assert ticket.status == status_before
        public = (
            await session.scalars(select(Message).where(Message.visibility == "public"))
        ).all()
        assert len(public) == 1
        internal = (
            await session.scalars(select(Message).where(Message.visibility == "internal"))
        ).one()
        assert internal.verified is False
        assert (
            await session.scalar(select(func.count()).select_from(Outbox)) == 1
        )  # only the first ack


async def test_reply_to_resolved_ticket_reopens_it(runtime: Runtime) -> None:
    from store.tickets import set_status

    await runtime.pipeline.process(make_mail(), src())
    async with runtime.sessions() as session, session.begin():
        ticket = (await session.scalars(select(Ticket))).one()
        await set_status(session, ticket, "resolved", actor="agent")
    reply = make_mail(
        subject="Re: [SD-000001] x", message_id="m4@eksote.fi", body="Ei toimi sittenkään"
    )
    outcome = await runtime.pipeline.process(reply, src())
    assert outcome.action is Action.UPDATED
    async with runtime.sessions() as session:
        ticket = (await session.scalars(select(Ticket))).one()
        assert ticket.status == "open"
        last = (await session.scalars(select(Outbox.template).order_by(Outbox.id.desc()))).first()
        assert last == "reopened"


async def test_unknown_ticket_tag_makes_new_ticket(runtime: Runtime) -> None:
    outcome = await runtime.pipeline.process(make_mail(subject="Re: [SD-000999] vanha asia"), src())
    assert outcome.action is Action.CREATED


async def test_database_gone_defers_and_stores_nothing(
    make_settings: Callable[..., Settings], tmp_path: Any
) -> None:
    settings = make_settings(f"sqlite:///{tmp_path}/db.sqlite")
    async with open_runtime(settings) as runtime:
        await runtime.engine.dispose()
        (tmp_path / "db.sqlite").unlink()
        (tmp_path / "db.sqlite").mkdir()  # the path now cannot be opened as a database
        outcome = await runtime.pipeline.process(make_mail(), src())
    assert outcome.action is Action.DEFERRED
    assert not outcome.action.acknowledged


async def test_oversize_mail_from_a_person_gets_a_short_rejection(
    db_url: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(db_url, limits={"max_message_bytes": 2048})
    async with open_runtime(settings) as runtime:
        await runtime.pipeline.process(make_mail(body="x" * 5000), src("person"))
        auto = make_mail(
            body="y" * 5000, message_id="m9@x", extra="Auto-Submitted: auto-generated\r\n"
        )
        await runtime.pipeline.process(auto, src("machine"))
        async with runtime.sessions() as session:
            rows = (await session.execute(select(Outbox.template, Outbox.recipient))).all()
    assert [tuple(r) for r in rows] == [("rejected", "maija@eksote.fi")]
