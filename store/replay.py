"""Past tickets with their first mail, for replaying candidate rules against them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from classify.replay import PastTicket
from ingest.parse import Unparseable, parse_mail
from servicedesk.runtime import open_runtime
from servicedesk.settings import Settings
from store.models import Intake, RawMessage, Ticket


async def load_past_tickets(settings: Settings, since: datetime | None = None) -> list[PastTicket]:
    """Each ticket's opening mail, re-parsed from the raw bytes we kept."""
    found: list[PastTicket] = []
    async with open_runtime(settings) as runtime:
        query = (
            select(Ticket, RawMessage.data)
            .join(Intake, (Intake.ticket_id == Ticket.id) & (Intake.action == "created"))
            .join(RawMessage, RawMessage.sha256 == Intake.raw_sha256)
            .order_by(Ticket.id)
        )
        if since is not None:
            query = query.where(Ticket.created_at >= since)
        async with runtime.sessions() as session:
            for ticket, raw in (await session.execute(query)).all():
                mail = parse_mail(raw)
                if isinstance(mail, Unparseable):
                    continue
                number = runtime.numbering.format(ticket.id)
                found.append(PastTicket(number, mail, ticket.category, ticket.subcategory))
    return found
