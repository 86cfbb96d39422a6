"""Resolved tickets close by themselves after the configured days, silently."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from ingest.outcome import SourceRef
from servicedesk.runtime import Runtime
from store.housekeeping import auto_close
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
