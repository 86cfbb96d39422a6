"""Past tickets with their first mail, for replaying candidate rules against them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from classify.replay import PastTicket
from ingest.parse import Unparseable, parse_mail
from store.models import Intake, RawMessage, Ticket
from store.tickets import Numbering


async def load_past_tickets(
    sessions: async_sessionmaker[AsyncSession], numbering: Numbering, since: datetime | None = None
) -> list[PastTicket]:
    """Each ticket's opening mail, re-parsed from the raw bytes we kept."""
    query = (
        select(Ticket, RawMessage.data)
        .join(Intake, (Intake.ticket_id == Ticket.id) & (Intake.action == "created"))
        .join(RawMessage, RawMessage.sha256 == Intake.raw_sha256)
        .order_by(Ticket.id)
    )
    if since is not None:
        query = query.where(Ticket.created_at >= since)
    found: list[PastTicket] = []
    async with sessions() as session:
        for ticket, raw in (await session.execute(query)).all():
            mail = parse_mail(raw)
            if isinstance(mail, Unparseable):
                continue
            found.append(
                PastTicket(numbering.format(ticket.id), mail, ticket.category, ticket.subcategory)
            )
    return found
