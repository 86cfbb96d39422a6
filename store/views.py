"""Read queries for the status page, the agent API, the CLI and the metrics.

Nothing here writes.  The status-page queries are deliberately narrow: a
view token yields one ticket, and from it only public messages, public
status events and the requester's own attachments, so a template cannot
show what a query never loaded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import and_, exists, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from store.models import (
    AccessToken,
    Attachment,
    Blob,
    Event,
    Feedback,
    Intake,
    Message,
    Outbox,
    Ticket,
    utcnow,
)
from store.tickets import Numbering
from store.tokens import token_hash

# What token_for produces: 24 bytes, URL-safe base64.  Anything else cannot
# be a token, and is refused without touching the database.
TOKEN_SHAPE = re.compile(r"^[A-Za-z2-7]{32}$")


def token_expired(ticket: Ticket, days_after_close: int, now: datetime | None = None) -> bool:
    """Links die ``days_after_close`` days after the ticket was closed (not merely resolved)."""
    if ticket.status != "closed" or ticket.closed_at is None:
        return False
    return (now or utcnow()) - ticket.closed_at > timedelta(days=days_after_close)


async def ticket_by_view_token(
    session: AsyncSession,
    token: str,
    *,
    days_after_close: int,
    now: datetime | None = None,
    for_update: bool = False,
) -> Ticket | None:
    """The ticket a live, unexpired view token opens; None for anything else.

    ``for_update`` as in ``ticket_by_number``.
    """
    if not TOKEN_SHAPE.match(token):
        return None
    query = (
        select(Ticket)
        .join(AccessToken, AccessToken.ticket_id == Ticket.id)
        .where(
            AccessToken.token_hash == token_hash(token),
            AccessToken.purpose == "view",
            AccessToken.revoked_at.is_(None),
        )
    )
    if for_update:
        query = query.with_for_update(of=Ticket).execution_options(populate_existing=True)
    row = await session.execute(query)
    ticket = row.scalar_one_or_none()
    if ticket is None or token_expired(ticket, days_after_close, now):
        return None
    return ticket


@dataclass(frozen=True, slots=True)
class TimelineItem:
    """One line of the page's history: a public message or a status change."""

    kind: str  # message | status
    at: datetime
    order: int
    incoming: bool = False
    author: str = ""
    text: str = ""
    html: str = ""
    old: str = ""
    new: str = ""
    attachments: tuple[Attachment, ...] = ()


async def public_timeline(session: AsyncSession, ticket_id: int) -> list[TimelineItem]:
    """Public messages and status changes, oldest first; internal ones never load."""
    messages = (
        await session.scalars(
            select(Message)
            .where(Message.ticket_id == ticket_id, Message.visibility == "public")
            .order_by(Message.id)
        )
    ).all()
    by_message = await _attachments_by_message(
        session, [m.id for m in messages if m.direction == "in"]
    )
    items = [
        TimelineItem(
            "message",
            m.created_at,
            m.id,
            incoming=m.direction == "in",
            author=(m.from_name or m.from_email) if m.direction == "in" else "",
            text=m.text,
            html=m.html if not m.text.strip() else "",
            attachments=tuple(by_message.get(m.id, ())),
        )
        for m in messages
    ]
    events = (
        await session.scalars(
            select(Event)
            .where(Event.ticket_id == ticket_id, Event.kind == "status", Event.public.is_(True))
            .order_by(Event.id)
        )
    ).all()
    items += [TimelineItem("status", e.created_at, e.id, old=e.old, new=e.new) for e in events]
    items.sort(key=lambda item: (item.at, item.kind != "message", item.order))
    return items


async def _attachments_by_message(
    session: AsyncSession, message_ids: list[int]
) -> dict[int, list[Attachment]]:
    if not message_ids:
        return {}
    rows = (
        await session.scalars(
            select(Attachment)
            .where(Attachment.message_id.in_(message_ids), Attachment.storage != "dropped")
            .order_by(Attachment.id)
        )
    ).all()
    grouped: dict[int, list[Attachment]] = {}
    for row in rows:
        grouped.setdefault(row.message_id, []).append(row)
    return grouped


async def requester_attachment(
    session: AsyncSession, ticket_id: int, attachment_id: int
) -> Attachment | None:
    """An attachment the requester sent on this ticket's public thread, else None."""
    return await session.scalar(
        select(Attachment)
        .join(Message, Message.id == Attachment.message_id)
        .where(
            Attachment.id == attachment_id,
            Attachment.storage != "dropped",
            Message.ticket_id == ticket_id,
            Message.direction == "in",
            Message.visibility == "public",
        )
    )


async def attachment_content(
    session: AsyncSession, attachment: Attachment, attachments_dir: Path
) -> bytes | Path | None:
    """The bytes (db storage) or the file path (disk storage); None if gone."""
    if attachment.storage == "db":
        blob = await session.get(Blob, attachment.sha256)
        return None if blob is None else blob.data
    path = attachments_dir / attachment.sha256[:2] / attachment.sha256
    return path if path.is_file() else None


async def feedback_for(session: AsyncSession, ticket_id: int) -> Feedback | None:
    return await session.get(Feedback, ticket_id)


# -- agents ------------------------------------------------------------------


def parse_number(ref: str, numbering: Numbering) -> int | None:
    """``SD-000123``, ``sd-123`` or ``123`` -> 123; None when it is none of these."""
    ref = ref.strip()
    if ref.upper().startswith(numbering.prefix.upper()):
        ref = ref[len(numbering.prefix) :]
    # ASCII digits only: str.isdigit() accepts "²", which int() refuses.
    return int(ref) if re.fullmatch(r"[0-9]{1,18}", ref) else None


async def ticket_by_number(
    session: AsyncSession, ref: str, numbering: Numbering, *, for_update: bool = False
) -> Ticket | None:
    """``for_update`` before changing it: the row stays locked (PostgreSQL) until
    commit, so simultaneous changes take turns and each sees the one before;
    on SQLite the caller's ``transaction(..., writer=True)`` does the same."""
    number = parse_number(ref, numbering)
    if number is None:
        return None
    return await session.get(
        Ticket, number, with_for_update=for_update, populate_existing=for_update
    )


@dataclass(frozen=True, slots=True)
class TicketFilter:
    status: tuple[str, ...] = ()
    category: tuple[str, ...] = ()
    organisation: tuple[str, ...] = ()
    assignee: str | None = None
    text: str = ""
    limit: int = 50
    offset: int = 0


def _like(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _without_nul(spec: TicketFilter) -> TicketFilter:
    """PostgreSQL text cannot hold NUL; a NUL in a filter can match nothing anyway."""

    def clean(values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v.replace("\x00", "") for v in values)

    return replace(
        spec,
        status=clean(spec.status),
        category=clean(spec.category),
        organisation=clean(spec.organisation),
        assignee=None if spec.assignee is None else spec.assignee.replace("\x00", ""),
        text=spec.text.replace("\x00", ""),
    )


async def list_tickets(session: AsyncSession, spec: TicketFilter) -> tuple[list[Ticket], int]:
    """Tickets matching every given filter, newest first, and the total count."""
    spec = _without_nul(spec)
    conditions: list[ColumnElement[bool]] = []
    if spec.status:
        conditions.append(Ticket.status.in_(spec.status))
    if spec.category:
        conditions.append(
            or_(Ticket.category.in_(spec.category), Ticket.subcategory.in_(spec.category))
        )
    if spec.organisation:
        conditions.append(Ticket.organisation.in_(spec.organisation))
    if spec.assignee is not None:
        conditions.append(Ticket.assignee == spec.assignee)
    if spec.text.strip():
        pattern = _like(spec.text.strip())
        in_messages = exists().where(
            Message.ticket_id == Ticket.id, Message.text.ilike(pattern, escape="\\")
        )
        conditions.append(
            or_(
                Ticket.subject.ilike(pattern, escape="\\"),
                Ticket.requester_email.ilike(pattern, escape="\\"),
                in_messages,
            )
        )
    where = and_(*conditions) if conditions else and_(True)
    total = await session.scalar(select(func.count()).select_from(Ticket).where(where)) or 0
    rows = await session.scalars(
        select(Ticket).where(where).order_by(Ticket.id.desc()).limit(spec.limit).offset(spec.offset)
    )
    return list(rows.all()), int(total)


@dataclass(frozen=True, slots=True)
class TicketDetail:
    """Everything an agent sees about one ticket, internal parts included."""

    ticket: Ticket
    messages: list[Message]
    attachments: dict[int, list[Attachment]]
    events: list[Event]
    feedback: Feedback | None
    outbox: list[Outbox] = field(default_factory=list)


async def ticket_detail(session: AsyncSession, ticket: Ticket) -> TicketDetail:
    messages = list(
        (
            await session.scalars(
                select(Message).where(Message.ticket_id == ticket.id).order_by(Message.id)
            )
        ).all()
    )
    attachment_rows = (
        await session.scalars(
            select(Attachment)
            .where(Attachment.message_id.in_([m.id for m in messages]))
            .order_by(Attachment.id)
        )
    ).all()
    attachments: dict[int, list[Attachment]] = {}
    for row in attachment_rows:
        attachments.setdefault(row.message_id, []).append(row)
    events = list(
        (
            await session.scalars(
                select(Event).where(Event.ticket_id == ticket.id).order_by(Event.id)
            )
        ).all()
    )
    outbox = list(
        (
            await session.scalars(
                select(Outbox).where(Outbox.ticket_id == ticket.id).order_by(Outbox.id)
            )
        ).all()
    )
    return TicketDetail(
        ticket, messages, attachments, events, await feedback_for(session, ticket.id), outbox
    )


# -- operations ----------------------------------------------------------------


async def db_ping(session: AsyncSession) -> None:
    await session.execute(text("SELECT 1"))


async def counts_by(session: AsyncSession, *columns: object) -> list[tuple[tuple[str, ...], int]]:
    """``SELECT cols, count(*) GROUP BY cols`` for the metrics endpoint."""
    cols = list(columns)
    result = await session.execute(select(*cols, func.count()).group_by(*cols))  # type: ignore[call-overload]
    return [(tuple(str(v) for v in row[:-1]), int(row[-1])) for row in result.all()]


async def intake_by_action(session: AsyncSession) -> list[tuple[tuple[str, ...], int]]:
    return await counts_by(session, Intake.action)


async def tickets_by_category(session: AsyncSession) -> list[tuple[tuple[str, ...], int]]:
    return await counts_by(session, Ticket.category, Ticket.status)


async def outbox_by_state(session: AsyncSession) -> list[tuple[tuple[str, ...], int]]:
    return await counts_by(session, Outbox.kind, Outbox.state)


async def feedback_counts(session: AsyncSession) -> list[tuple[tuple[str, ...], int]]:
    return await counts_by(session, Feedback.helpful)


async def oldest_pending_outbox(session: AsyncSession) -> datetime | None:
    value = await session.scalar(
        select(func.min(Outbox.created_at)).where(Outbox.state == "pending")
    )
    return value if isinstance(value, datetime) else None
