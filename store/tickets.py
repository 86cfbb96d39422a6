"""Tickets, their messages, participants, attachments and events.

Functions take an open session and never commit: the caller's transaction is
the unit that makes a mail's ticket, message, events and outbox rows appear
together or not at all.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from classify.decision import Decision
from ingest.mail import Address, InboundMail
from store import models
from store.models import Event, Message, Participant, Ticket, utcnow

STATUSES = ("new", "open", "waiting", "resolved", "closed")


@dataclass(frozen=True, slots=True)
class Numbering:
    prefix: str = "SD-"
    digits: int = 6

    def format(self, ticket_id: int) -> str:
        return f"{self.prefix}{ticket_id:0{self.digits}d}"


@dataclass(frozen=True, slots=True)
class AttachmentStore:
    """Where attachment bytes go: content-addressed files, or the blobs table."""

    mode: str
    directory: Path

    def path_for(self, sha256: str) -> Path:
        return self.directory / sha256[:2] / sha256


def _addresses(items: tuple[Address, ...]) -> list[str]:
    return [a.email for a in items]


def message_values(
    ticket_id: int,
    mail: InboundMail,
    *,
    intake_id: int | None,
    text: str,
    visibility: str = "public",
    verified: bool = True,
) -> dict[str, Any]:
    """Column values of the row for one received mail (ORM object or bulk insert alike)."""
    return dict(
        ticket_id=ticket_id,
        intake_id=intake_id,
        direction="in",
        visibility=visibility,
        message_id=mail.message_id,
        in_reply_to=mail.in_reply_to,
        references=list(mail.references),
        subject=mail.subject[:2000],
        from_email=mail.sender.email if mail.sender else "",
        from_name=mail.sender.name[:320] if mail.sender else "",
        to=_addresses(mail.to)[:100],
        cc=_addresses(mail.cc)[:100],
        sent_date=mail.date,
        text=text,
        full_text=mail.text,
        html=mail.safe_html,
        verified=verified,
    )


def attachment_values(
    message_id: int, mail: InboundMail, store: AttachmentStore | None
) -> list[dict[str, Any]]:
    """Rows describing a message's attachments; ``store_attachments`` keeps the bytes."""
    rows = []
    for item in mail.attachments:
        storage = "dropped" if item.dropped_reason else (store.mode if store else "db")
        rows.append(
            dict(
                message_id=message_id,
                filename=item.filename,
                content_type=item.content_type,
                size=item.size,
                sha256=_digest(item.data),
                inline=item.inline,
                content_id=item.content_id,
                storage=storage,
                dropped_reason=item.dropped_reason,
            )
        )
    return rows


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def store_attachments(
    session: AsyncSession,
    mail: InboundMail,
    rows: list[dict[str, Any]],
    store: AttachmentStore | None,
) -> None:
    """Attachment bytes to disk or the blobs table, once per content.

    ``rows`` are the mail's ``attachment_values``: their digests and storage
    decisions are reused, so a large attachment is hashed once.
    """
    for item, row in zip(mail.attachments, rows, strict=True):
        digest = row["sha256"]
        if row["storage"] == "disk" and store is not None:
            target = store.path_for(digest)
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                partial = target.with_suffix(".part")
                partial.write_bytes(item.data)
                partial.replace(target)
        elif row["storage"] == "db" and await session.get(models.Blob, digest) is None:
            session.add(models.Blob(sha256=digest, data=item.data))


async def add_attachments(
    session: AsyncSession, message: Message, mail: InboundMail, store: AttachmentStore | None
) -> None:
    rows = attachment_values(message.id, mail, store)
    await store_attachments(session, mail, rows, store)
    session.add_all(models.Attachment(**v) for v in rows)


async def add_message(
    session: AsyncSession,
    ticket: Ticket,
    mail: InboundMail,
    *,
    intake_id: int | None,
    text: str,
    visibility: str = "public",
    verified: bool = True,
    attachments: AttachmentStore | None = None,
) -> Message:
    values = message_values(
        ticket.id, mail, intake_id=intake_id, text=text, visibility=visibility, verified=verified
    )
    message = Message(**values)
    session.add(message)
    await session.flush()
    await add_attachments(session, message, mail, attachments)
    return message


def participant_values(
    ticket_id: int, mail: InboundMail, desk: str, existing: set[str]
) -> list[dict[str, Any]]:
    """Requester plus everyone copied in, except the desk's own addresses and ``existing``."""
    people: list[tuple[Address, str]] = []
    if mail.sender:
        people.append((mail.sender, "requester"))
    people += [(a, "cc") for a in mail.recipients]
    desk_local, _, desk_domain = desk.lower().partition("@")
    rows = []
    for address, role in people:
        if address.domain == desk_domain and address.local.split("+")[0] == desk_local:
            continue
        if address.email in existing:
            continue
        existing.add(address.email)
        rows.append(
            dict(ticket_id=ticket_id, email=address.email, name=address.name[:320], role=role)
        )
    return rows


async def add_participants(
    session: AsyncSession, ticket: Ticket, mail: InboundMail, desk: str
) -> None:
    existing = set(
        (
            await session.scalars(
                select(Participant.email).where(Participant.ticket_id == ticket.id)
            )
        ).all()
    )
    session.add_all(Participant(**v) for v in participant_values(ticket.id, mail, desk, existing))
    await session.flush()


def ticket_values(
    mail: InboundMail, decision: Decision, *, linked_ticket_id: int | None = None
) -> dict[str, Any]:
    sender = mail.sender
    return dict(
        subject=mail.subject[:2000] or "(no subject)",
        status="new",
        category=decision.category,
        subcategory=decision.subcategory,
        organisation=decision.organisation,
        priority=decision.priority,
        language=decision.language,
        rule=decision.rule,
        rules_version=decision.rules_version,
        reasons=list(decision.reasons),
        tags=list(decision.tags),
        requester_email=sender.email if sender else "",
        requester_name=sender.name[:320] if sender else "",
        suppress_reply=decision.suppress_reply,
        linked_ticket_id=linked_ticket_id,
    )


async def add_event(
    session: AsyncSession,
    ticket: Ticket,
    kind: str,
    *,
    actor: str = "system",
    public: bool = True,
    old: str = "",
    new: str = "",
    message: Message | None = None,
    data: dict[str, object] | None = None,
) -> Event:
    event = Event(
        ticket_id=ticket.id,
        kind=kind,
        actor=actor,
        public=public,
        old=old,
        new=new,
        message_id=message.id if message else None,
        data=data or {},
    )
    session.add(event)
    await session.flush()
    return event


async def set_status(
    session: AsyncSession, ticket: Ticket, status: str, *, actor: str = "system"
) -> Event | None:
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}; one of {', '.join(STATUSES)}")
    if ticket.status == status:
        return None
    old = ticket.status
    ticket.status = status
    now = utcnow()
    ticket.updated_at = now
    if status == "resolved":
        ticket.resolved_at = now
    elif status == "closed":
        ticket.closed_at = now
    else:
        ticket.resolved_at = None
        ticket.closed_at = None
    return await add_event(session, ticket, "status", actor=actor, old=old, new=status)


async def is_participant(session: AsyncSession, ticket_id: int, email: str) -> bool:
    found = await session.scalar(
        select(func.count())
        .select_from(Participant)
        .where(Participant.ticket_id == ticket_id, Participant.email == email.lower())
    )
    return bool(found)


def closed_since(ticket: Ticket) -> datetime | None:
    return ticket.closed_at or ticket.resolved_at
