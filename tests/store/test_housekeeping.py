"""Resolved tickets close by themselves after the configured days, silently."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from ingest.outcome import SourceRef
from servicedesk.runtime import Runtime
from store.housekeeping import auto_close, remind_waiting
from store.models import Event, Outbox, Ticket, utcnow
from store.tickets import set_status

MAIL = b"From: a@eksote.fi\r\nTo: servicedesk@example.org\r\nSubject: {s}\r\nMessage-ID: <{s}@x>\r\n\r\nhei"


async def test_auto_close_only_old_resolved_tickets(runtime: Runtime) -> None:
    for name in ("old", "fresh", "open"):
        await runtime.pipeline.process(MAIL.replace(b"{s}", name.encode()), SourceRef("file", name))
    async with runtime.sessions() as session, session.begin():
        old, fresh, _ = (await session.scalars(select(Ticket).order_by(Ticket.id))).all()
        await set_status(session, old, "resolved")
        await set_status(session, fresh, "resolved")
        old.resolved_at = utcnow() - timedelta(days=8)
    outbox_before = await _count(runtime, Outbox)
    assert await auto_close(runtime.sessions, 7) == 1
    async with runtime.sessions() as session:
        statuses = (await session.scalars(select(Ticket.status).order_by(Ticket.id))).all()
        assert list(statuses) == ["closed", "resolved", "new"]
        actor = await session.scalar(select(Event.actor).where(Event.new == "closed"))
        assert actor == "system:auto-close"
    assert await _count(runtime, Outbox) == outbox_before
    assert await auto_close(runtime.sessions, 7) == 0
    assert await auto_close(runtime.sessions, 0) == 0


async def _count(runtime: Runtime, model: object) -> int:
    async with runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)  # type: ignore[arg-type]


async def test_one_reminder_per_waiting_stretch(runtime: Runtime) -> None:
    await runtime.pipeline.process(MAIL.replace(b"{s}", b"w1"), SourceRef("file", "w1"))
    async with runtime.sessions() as session, session.begin():
        ticket = (await session.scalars(select(Ticket))).one()
        await set_status(session, ticket, "waiting", actor="agent")
    assert await remind_waiting(runtime.sessions, 5) == 0  # not waiting long enough yet
    async with runtime.sessions() as session, session.begin():
        ticket = (await session.scalars(select(Ticket))).one()
        ticket.updated_at = utcnow() - timedelta(days=6)
    assert await remind_waiting(runtime.sessions, 5) == 1
    assert await remind_waiting(runtime.sessions, 5) == 0  # once per stretch
    async with runtime.sessions() as session:
        last = (await session.scalars(select(Outbox).order_by(Outbox.id.desc()))).first()
        assert last is not None and (last.template, last.recipient) == ("reminder", "a@eksote.fi")
    sent = await runtime.outbox.drain_once()
    assert sent >= 1
    mails = sorted((runtime.settings.data_dir / "sent").glob("*.eml"))
    assert b"odottaa" in mails[-1].read_bytes() or "odottaa" in mails[-1].read_text(errors="ignore")


async def test_two_schedulers_at_once_send_one_reminder(runtime: Runtime) -> None:
    """Two daemons' schedulers firing together (one host, or one database)."""
    for name in ("s1", "s2", "s3"):
        await runtime.pipeline.process(MAIL.replace(b"{s}", name.encode()), SourceRef("file", name))
    async with runtime.sessions() as session, session.begin():
        for ticket in (await session.scalars(select(Ticket))).all():
            await set_status(session, ticket, "waiting", actor="agent")
            ticket.updated_at = utcnow() - timedelta(days=6)
    counts = await asyncio.gather(*(remind_waiting(runtime.sessions, 5) for _ in range(4)))
    assert sum(counts) == 3
    async with runtime.sessions() as session:
        reminders = await session.scalar(
            select(func.count()).select_from(Outbox).where(Outbox.template == "reminder")
        )
    assert reminders == 3
