"""Periodic upkeep the scheduler runs: resolved tickets close by themselves.

Every daemon process runs these jobs. The due rows are locked as they are
read (PostgreSQL skips rows another process holds; on SQLite the write
lock is taken first), so two schedulers firing together act once.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store.actions import change_status
from store.db import transaction
from store.models import Event, Ticket, utcnow
from store.outbox import enqueue_mail
from store.tickets import add_event

AUTO_CLOSE_ACTOR = "system:auto-close"


async def auto_close(
    sessions: async_sessionmaker[AsyncSession], days: int, limit: int = 500
) -> int:
    """Close tickets resolved more than ``days`` ago; the requester already had the
    "resolved" mail with its feedback link, so closing sends nothing."""
    if days <= 0:
        return 0
    cutoff = utcnow() - timedelta(days=days)
    async with transaction(sessions, writer=True) as session:
        due = (
            await session.scalars(
                select(Ticket)
                .where(Ticket.status == "resolved", Ticket.resolved_at < cutoff)
                .order_by(Ticket.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        for ticket in due:
            await change_status(session, ticket, "closed", actor=AUTO_CLOSE_ACTOR, notify=False)
    return len(due)


async def remind_waiting(
    sessions: async_sessionmaker[AsyncSession], days: int, limit: int = 500
) -> int:
    """One reminder per waiting stretch: a ticket waiting for the requester longer than
    ``days`` gets a ``reminder`` mail, unless it had one since it last changed."""
    if days <= 0:
        return 0
    cutoff = utcnow() - timedelta(days=days)
    reminded = exists().where(
        Event.ticket_id == Ticket.id,
        Event.kind == "reminder",
        Event.created_at >= Ticket.updated_at,
    )
    async with transaction(sessions, writer=True) as session:
        due = (
            await session.scalars(
                select(Ticket)
                .where(Ticket.status == "waiting", Ticket.updated_at < cutoff, ~reminded)
                .order_by(Ticket.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        for ticket in due:
            event = await add_event(
                session, ticket, "reminder", public=False, actor="system:reminder"
            )
            if ticket.requester_email and not ticket.suppress_reply:
                await enqueue_mail(session, ticket, "reminder", ticket.requester_email, event=event)
    return len(due)
