"""What one outbox row needs to become a mail, read from the store in one go.

The worker renders and sends outside any transaction, so everything the
templates and headers need is gathered here into a plain ``Prepared`` value:
ticket facts, the tracking link and reply token rebuilt from their stored
nonces, and the requester message the mail answers (for threading).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from notify.render import one_line
from store.models import AccessToken, Event, Message, Outbox, Ticket
from store.tickets import Numbering
from store.tokens import token_for

_REPLY_PREFIX = re.compile(
    r"^\s*((re|fw|fwd|vs|vl|sv|vb|aw|wg|vast|ant)\s*(\[\d+\])?\s*:\s*)+", re.I
)


class NotSendable(Exception):
    """The row cannot become a mail (ticket gone, payload incomplete): fail it, do not retry."""


@dataclass(frozen=True, slots=True)
class Links:
    base_url: str
    secret_key: bytes


@dataclass(frozen=True, slots=True)
class Prepared:
    outbox_id: int
    ticket_id: int | None
    template: str
    recipient: str
    recipient_name: str
    language: str
    organisation: str
    subcategory: str
    number: str  # "" for mail without a ticket (rejections)
    reply_token: str
    in_reply_to: str
    references: tuple[str, ...]
    variables: dict[str, Any] = field(default_factory=dict)


def clean_subject(subject: str, prefix: str) -> str:
    """The requester's subject without Re:/VS:/SV: chains and our own [SD-…] tag."""
    text = re.sub(rf"\[{re.escape(prefix)}\d+\]", " ", subject, flags=re.IGNORECASE)
    previous = None
    while previous != text:
        previous = text
        text = _REPLY_PREFIX.sub("", text)
    return one_line(text, 200) or "-"


async def _token(session: AsyncSession, ticket_id: int, purpose: str, key: bytes) -> str:
    row = await session.scalar(
        select(AccessToken)
        .where(
            AccessToken.ticket_id == ticket_id,
            AccessToken.purpose == purpose,
            AccessToken.revoked_at.is_(None),
        )
        .order_by(AccessToken.id.desc())
        .limit(1)
    )
    return token_for(key, purpose, row.nonce) if row is not None else ""


async def _answered_message(session: AsyncSession, row: Outbox, ticket_id: int) -> Message | None:
    """The requester mail this one answers: the event's message, else their latest."""
    if row.event_id is not None:
        event = await session.get(Event, row.event_id)
        if event is not None and event.message_id is not None:
            message = await session.get(Message, event.message_id)
            if message is not None and message.direction == "in":
                return message
    return await session.scalar(
        select(Message)
        .where(Message.ticket_id == ticket_id, Message.direction == "in")
        .order_by((Message.from_email == row.recipient.lower()).desc(), Message.id.desc())
        .limit(1)
    )


async def _status_change(session: AsyncSession, row: Outbox, ticket: Ticket) -> tuple[str, str]:
    old, new = row.payload.get("old"), row.payload.get("new")
    if (not old or not new) and row.event_id is not None:
        event = await session.get(Event, row.event_id)
        if event is not None and event.kind == "status":
            old, new = old or event.old, new or event.new
    return str(old or ticket.status), str(new or ticket.status)


async def _agent_text(session: AsyncSession, row: Outbox, ticket_id: int) -> str:
    message_id = row.payload.get("message_id")
    message = await session.get(Message, int(message_id)) if message_id is not None else None
    if message is None or message.ticket_id != ticket_id:
        raise NotSendable(f"agent_reply: payload message_id {message_id!r} is not on this ticket")
    return message.text.strip()


def _rejection(row: Outbox, language: str) -> Prepared:
    payload = row.payload
    return Prepared(
        outbox_id=row.id,
        ticket_id=None,
        template=row.template,
        recipient=row.recipient,
        recipient_name=one_line(str(payload.get("name", "")), 200),
        language=str(payload.get("language") or language),
        organisation="",
        subcategory="",
        number="",
        reply_token="",
        in_reply_to=str(payload.get("in_reply_to", "")),
        references=(),
        variables={
            "name": one_line(str(payload.get("name", "")), 200),
            "subject": one_line(str(payload.get("subject", "")), 200) or "-",
            "reason": str(payload.get("reason", "")),
            "detail": one_line(str(payload.get("detail", "")), 200),
            "category": "",
        },
    )


async def prepare(
    session: AsyncSession, row: Outbox, links: Links, numbering: Numbering, default_language: str
) -> Prepared:
    """Everything needed to render and address ``row``; raises NotSendable when it cannot be."""
    if row.ticket_id is None:
        if row.template != "rejected":
            raise NotSendable(f"{row.template}: outbox row has no ticket")
        return _rejection(row, default_language)
    ticket = await session.get(Ticket, row.ticket_id)
    if ticket is None:
        raise NotSendable(f"ticket {row.ticket_id} no longer exists")
    view = await _token(session, ticket.id, "view", links.secret_key)
    if not view:
        raise NotSendable(f"ticket {ticket.id} has no view token")
    link = f"{links.base_url.rstrip('/')}/t/{view}"
    answered = await _answered_message(session, row, ticket.id)
    recipient = row.recipient.lower()
    name = ticket.requester_name if recipient == ticket.requester_email.lower() else ""
    if answered is not None and answered.from_email == recipient and answered.from_name:
        name = answered.from_name
    variables: dict[str, Any] = {
        "number": numbering.format(ticket.id),
        "link": link,
        "feedback_link": link,
        "subject": clean_subject(ticket.subject, numbering.prefix),
        "name": one_line(name, 200),
        "category": ticket.category,
        "subcategory": ticket.subcategory,
        "organisation": ticket.organisation,
        "status": ticket.status,
    }
    if row.template == "status_changed":
        variables["old_status"], variables["new_status"] = await _status_change(
            session, row, ticket
        )
    if row.template == "agent_reply":
        variables["agent_text"] = await _agent_text(session, row, ticket.id)
    references: tuple[str, ...] = ()
    in_reply_to = ""
    if answered is not None and answered.message_id:
        in_reply_to = answered.message_id
        references = (*answered.references[-9:], answered.message_id)
    return Prepared(
        outbox_id=row.id,
        ticket_id=ticket.id,
        template=row.template,
        recipient=recipient,
        recipient_name=variables["name"],
        language=ticket.language,
        organisation=ticket.organisation,
        subcategory=ticket.subcategory or ticket.category,
        number=variables["number"],
        reply_token=await _token(session, ticket.id, "reply", links.secret_key),
        in_reply_to=in_reply_to,
        references=references,
        variables=variables,
    )
