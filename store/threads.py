"""Resolve a mail's thread hints to a ticket, and say how sure we are."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ingest.conversation import ThreadHints
from store.models import AccessToken, Message, Outbox, Ticket
from store.tokens import token_hash


@dataclass(frozen=True, slots=True)
class ThreadMatch:
    ticket: Ticket
    via: str  # token | subject | references
    by_token: bool


async def find_thread(session: AsyncSession, hints: ThreadHints) -> ThreadMatch | None:
    if hints.reply_token:
        token = await session.scalar(
            select(AccessToken).where(
                AccessToken.token_hash == token_hash(hints.reply_token),
                AccessToken.purpose == "reply",
                AccessToken.revoked_at.is_(None),
            )
        )
        if token is not None:
            ticket = await session.get(Ticket, token.ticket_id)
            if ticket is not None:
                return ThreadMatch(ticket, "reply token in address", by_token=True)
    if hints.ticket_number is not None:
        ticket = await session.get(Ticket, hints.ticket_number)
        if ticket is not None:
            return ThreadMatch(ticket, "ticket tag in subject", by_token=False)
    if hints.message_ids:
        ids = list(hints.message_ids[:50])
        ticket_id = await session.scalar(
            select(Message.ticket_id).where(Message.message_id.in_(ids)).limit(1)
        )
        if ticket_id is None:
            ticket_id = await session.scalar(
                select(Outbox.ticket_id).where(Outbox.message_id.in_(ids)).limit(1)
            )
        if ticket_id is not None:
            ticket = await session.get(Ticket, ticket_id)
            if ticket is not None:
                return ThreadMatch(ticket, "In-Reply-To/References", by_token=False)
    return None
