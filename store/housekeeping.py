"""Periodic upkeep the scheduler runs: resolved tickets close by themselves."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store.actions import change_status
from store.db import transaction
from store.models import Ticket, utcnow

AUTO_CLOSE_ACTOR = "system:auto-close"


async def auto_close(
    sessions: async_sessionmaker[AsyncSession], days: int, limit: int = 500
) -> int:
    """Close tickets resolved more than ``days`` ago; the requester already had the
    "resolved" mail with its feedback link, so closing sends nothing."""
    if days <= 0:
        return 0
    cutoff = utcnow() - timedelta(days=days)
    async with transaction(sessions) as session:
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
