"""What the pipeline's decision means for the database, in one transaction each.

``open_tickets`` and ``continue_ticket`` write the ticket (or update), message,
participants, events, tokens, intake row and outbox rows in the caller's
transaction; either all of it exists afterwards or none of it does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Insert, Table, insert
from sqlalchemy.ext.asyncio import AsyncSession

from classify.decision import Decision
from ingest.mail import InboundMail
from store import intake, tickets, webhooks
from store.ids import reserve
from store.intake import Received
from store.models import (
    AccessToken,
    Attachment,
    Base,
    Event,
    Intake,
    Message,
    Outbox,
    Participant,
    Ticket,
    utcnow,
)
from store.outbox import enqueue_mail
from store.threads import ThreadMatch
from store.tickets import AttachmentStore
from store.tokens import new_nonce, token_for, token_hash


@dataclass(frozen=True, slots=True)
class DeskPolicy:
    """The few settings that decide how a mail changes the store."""

    address: str
    secret_key: bytes
    attachments: AttachmentStore
    reopen_days: int = 14
    stranger_replies: str = "note"  # note | new_ticket


@dataclass(frozen=True, slots=True)
class Applied:
    action: str  # created | updated
    ticket_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class NewTicket:
    """One mail that opens a ticket, with what decided it."""

    received: Received
    mail: InboundMail
    decision: Decision
    linked_id: int | None = None
    why: str = ""


def _core_insert(model: type[Base]) -> Insert:
    """A plain table INSERT: executemany without the ORM's bulk machinery (its cost
    per statement was most of a small group's write time)."""
    return insert(cast(Table, model.__table__))


def token_values(ticket_id: int, key: bytes) -> list[dict[str, Any]]:
    """A view and a reply token; only their hashes are stored (see store.tokens)."""
    rows = []
    for purpose in ("view", "reply"):
        nonce = new_nonce()
        token = token_hash(token_for(key, purpose, nonce))
        rows.append(dict(ticket_id=ticket_id, purpose=purpose, nonce=nonce, token_hash=token))
    return rows


async def open_tickets(
    session: AsyncSession, items: Sequence[NewTicket], policy: DeskPolicy
) -> list[Applied]:
    """Open one ticket per item, in order, with one multi-row INSERT per table for the group.

    Ids of the rows others point to are reserved first (store.ids), so the
    group is linked in memory and written table by table, parents first,
    without the unit of work, which cost more than the database did. The
    flush hooks of store.webhooks do not see these events, so their webhook
    rows are queued here explicitly.
    """
    if not items:
        return []
    await intake.store_raw(session, *(item.received for item in items))
    n = len(items)
    ids = await reserve(session, {"tickets": n, "intake": n, "messages": n, "events": n})
    rows: dict[type[Base], list[dict[str, Any]]] = {
        model: []
        for model in (Ticket, Intake, Message, Event, Participant, AccessToken, Attachment, Outbox)
    }
    now = utcnow()
    applied = []
    for item in items:
        mail = item.mail
        ticket_id, intake_id = next(ids["tickets"]), next(ids["intake"])
        message_id, event_id = next(ids["messages"]), next(ids["events"])
        why = item.why or f"routed by rule {item.decision.rule}"
        dedup_key = item.received.dedup_key(mail)
        rows[Ticket].append(
            {
                "id": ticket_id,
                **tickets.ticket_values(mail, item.decision, linked_ticket_id=item.linked_id),
            }
        )
        rows[Intake].append(
            {
                "id": intake_id,
                **intake.row_values(item.received, dedup_key, "created", item.why, ticket_id),
            }
        )
        rows[Message].append(
            {
                "id": message_id,
                **tickets.message_values(ticket_id, mail, intake_id=intake_id, text=mail.text),
            }
        )
        data: dict[str, object] = {
            "rule": item.decision.rule,
            "reasons": list(item.decision.reasons),
            "notes": list(mail.notes),
        }
        rows[Event].append(
            dict(id=event_id, ticket_id=ticket_id, kind="created", actor="system", public=True,
                 old="", new="", message_id=message_id, data=data, created_at=now)
        )  # fmt: skip
        rows[Participant] += tickets.participant_values(ticket_id, mail, policy.address, set())
        rows[AccessToken] += token_values(ticket_id, policy.secret_key)
        attachments = tickets.attachment_values(message_id, mail, policy.attachments)
        await tickets.store_attachments(session, mail, attachments, policy.attachments)
        rows[Attachment] += attachments
        if not item.decision.suppress_reply and mail.sender is not None:
            rows[Outbox].append(dict(kind="mail", template="ack_new", ticket_id=ticket_id,
                                     event_id=event_id, recipient=mail.sender.email, payload={}))  # fmt: skip
        applied.append(Applied("created", ticket_id, why))
    for model in (Ticket, Intake, Message, Event):
        await session.execute(_core_insert(model), rows[model])
    webhooks.queue_events(session.sync_session, rows[Event])
    # Leaves: nothing points at them, so the database numbers them (as it
    # does rows that hooks add in this transaction).
    for leaf in (Participant, AccessToken, Attachment, Outbox):
        if rows[leaf]:
            await session.execute(_core_insert(leaf), rows[leaf])
    return applied


def _reopen_window_passed(ticket: Ticket, days: int) -> bool:
    since = tickets.closed_since(ticket)
    return (
        ticket.status == "closed" and since is not None and utcnow() - since > timedelta(days=days)
    )


async def continue_ticket(
    session: AsyncSession,
    received: Received,
    mail: InboundMail,
    match: ThreadMatch,
    policy: DeskPolicy,
    stripped_text: str,
) -> Applied | None:
    """A reply to an existing ticket; None means "treat it as a new ticket instead"."""
    ticket = match.ticket
    sender = mail.sender.email if mail.sender else ""
    verified = match.by_token or await tickets.is_participant(session, ticket.id, sender)
    if not verified and policy.stranger_replies == "new_ticket":
        return None
    if verified and _reopen_window_passed(ticket, policy.reopen_days):
        return None
    row = await intake.record(
        session, received, received.dedup_key(mail), "updated", ticket_id=ticket.id
    )
    if not verified:
        message = await tickets.add_message(
            session, ticket, mail, intake_id=row.id, text=stripped_text,
            visibility="internal", verified=False, attachments=policy.attachments,
        )  # fmt: skip
        await tickets.add_event(
            session, ticket, "unverified_reply", public=False, message=message,
            data={"from": sender, "via": match.via},
        )  # fmt: skip
        row.reason = f"sender {sender} is not a participant: kept as internal note"
        return Applied("updated", ticket.id, row.reason)
    message = await tickets.add_message(
        session, ticket, mail, intake_id=row.id, text=stripped_text, attachments=policy.attachments
    )
    await tickets.add_participants(session, ticket, mail, policy.address)
    event = await tickets.add_event(
        session, ticket, "reply", message=message, data={"via": match.via}
    )
    template = "ack_reply"
    if ticket.status in ("resolved", "closed"):
        await tickets.set_status(session, ticket, "open", actor=sender)
        template = "reopened"
    elif ticket.status == "waiting":
        await tickets.set_status(session, ticket, "open", actor=sender)
    ticket.updated_at = utcnow()
    if not ticket.suppress_reply:
        await enqueue_mail(session, ticket, template, sender, event=event)
    row.reason = f"reply matched by {match.via}"
    return Applied("updated", ticket.id, row.reason)
