"""What the pipeline's decision means for the database, in one transaction each.

``open_tickets`` and ``continue_ticket`` write the ticket (or update), message,
participants, events, tokens, intake row and outbox rows in the caller's
transaction; either all of it exists afterwards or none of it does.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from classify.decision import Decision
from ingest.mail import InboundMail
from store import intake, tickets
from store.ids import reserve
from store.intake import Received
from store.models import AccessToken, Outbox, Ticket, utcnow
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


def new_tokens(ticket_id: int, key: bytes, ids: Iterator[int]) -> list[AccessToken]:
    rows = []
    for purpose in ("view", "reply"):
        nonce = new_nonce()
        token = token_hash(token_for(key, purpose, nonce))
        rows.append(
            AccessToken(
                id=next(ids), ticket_id=ticket_id, purpose=purpose, nonce=nonce, token_hash=token
            )
        )
    return rows


async def open_tickets(
    session: AsyncSession, items: Sequence[NewTicket], policy: DeskPolicy
) -> list[Applied]:
    """Open one ticket per item, in order, with one INSERT per table for the whole group.

    Every id is reserved first (store.ids), so the rows are linked in memory
    and flushed together: a group of fifty mails costs the database about
    what one did when each row was inserted alone to learn its id.
    """
    if not items:
        return []
    await intake.store_raw(session, *(item.received for item in items))
    people = [tickets.new_participants(0, i.mail, policy.address, set()) for i in items]
    replies = [not i.decision.suppress_reply and i.mail.sender is not None for i in items]
    n = len(items)
    ids = await reserve(session, {
        "tickets": n, "intake": n, "messages": n, "events": n, "access_tokens": 2 * n,
        "participants": sum(map(len, people)),
        "attachments": sum(len(i.mail.attachments) for i in items),
    })  # fmt: skip
    # Rows in waves, each after the rows its foreign keys point to (the unit
    # of work does not order tables that no relationship() links).
    waves: list[list[object]] = [[], [], [], []]
    acks: list[dict[str, object]] = []
    applied = []
    for item, participants, reply in zip(items, people, replies, strict=True):
        ticket = tickets.new_ticket(item.mail, item.decision, linked_ticket_id=item.linked_id)
        ticket.id = next(ids["tickets"])
        dedup_key = item.received.dedup_key(item.mail)
        row = intake.new_row(item.received, dedup_key, "created", item.why, ticket.id)
        row.id = next(ids["intake"])
        message = tickets.new_message(ticket.id, item.mail, intake_id=row.id, text=item.mail.text)
        message.id = next(ids["messages"])
        data: dict[str, object] = {
            "rule": item.decision.rule,
            "reasons": list(item.decision.reasons),
            "notes": list(item.mail.notes),
        }
        event = tickets.new_event(ticket.id, "created", message_id=message.id, data=data)
        event.id = next(ids["events"])
        for person in participants:
            person.id, person.ticket_id = next(ids["participants"]), ticket.id
        waves[0].append(ticket)
        waves[1].append(row)
        waves[2].append(message)
        waves[3] += [
            event,
            *participants,
            *new_tokens(ticket.id, policy.secret_key, ids["access_tokens"]),
        ]
        waves[3] += tickets.attachment_rows(
            message, item.mail, policy.attachments, ids["attachments"]
        )
        if reply and item.mail.sender is not None:
            acks.append({"kind": "mail", "template": "ack_new", "ticket_id": ticket.id,
                         "event_id": event.id, "recipient": item.mail.sender.email})  # fmt: skip
        why = item.why or f"routed by rule {item.decision.rule}"
        applied.append(Applied("created", ticket.id, why))
    for item in items:
        await tickets.store_attachments(session, item.mail, policy.attachments)
    for wave in waves:
        session.add_all(wave)
        await session.flush()
    if acks:
        # Ids left to the database: rows other code adds in this transaction
        # (webhooks, store.webhooks) take theirs the same way, so none collide.
        await session.execute(insert(Outbox), acks)
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
