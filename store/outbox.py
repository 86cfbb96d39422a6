"""Queueing outgoing work in the caller's transaction (the outbox pattern)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from store.models import Event, Outbox, Ticket


async def enqueue_mail(
    session: AsyncSession,
    ticket: Ticket,
    template: str,
    recipient: str,
    *,
    event: Event | None = None,
    payload: dict[str, Any] | None = None,
) -> Outbox:
    row = Outbox(
        kind="mail",
        template=template,
        ticket_id=ticket.id,
        event_id=event.id if event else None,
        recipient=recipient,
        payload=payload or {},
    )
    session.add(row)
    await session.flush()
    return row
