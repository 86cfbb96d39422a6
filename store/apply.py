"""What the pipeline's decision means for the database, in one transaction each.

``open_ticket`` and ``continue_ticket`` write the ticket (or update), message,
participants, events, tokens, intake row and outbox rows together; either all
of it exists afterwards or none of it does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from classify.decision import Decision
from ingest.mail import InboundMail
from store import intake, tickets
from store.intake import Received
from store.models import AccessToken, Ticket, utcnow
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


async def issue_tokens(session: AsyncSession, ticket: Ticket, key: bytes) -> None:
    for purpose in ("view", "reply"):
        nonce = new_nonce()
        session.add(
            AccessToken(
                ticket_id=ticket.id,
                purpose=purpose,
                nonce=nonce,
                token_hash=token_hash(token_for(key, purpose, nonce)),
            )
        )
    await session.flush()


async def open_ticket(
    session: AsyncSession,
    received: Received,
    mail: InboundMail,
    decision: Decision,
    policy: DeskPolicy,
    *,
    linked: Ticket | None = None,
    why: str = "",
) -> Applied:
    ticket = await tickets.create_ticket(
        session, mail, decision, linked_ticket_id=linked.id if linked else None
    )
    row = await intake.record(
        session, received, received.dedup_key(mail), "created", why, ticket_id=ticket.id
    )
    message = await tickets.add_message(
        session, ticket, mail, intake_id=row.id, text=mail.text, attachments=policy.attachments
    )
    await tickets.add_participants(session, ticket, mail, policy.address)
    event = await tickets.add_event(
        session,
        ticket,
        "created",
        message=message,
        data={"rule": decision.rule, "reasons": list(decision.reasons), "notes": list(mail.notes)},
    )
    await issue_tokens(session, ticket, policy.secret_key)
    if not decision.suppress_reply and mail.sender is not None:
        await enqueue_mail(session, ticket, "ack_new", mail.sender.email, event=event)
    return Applied("created", ticket.id, why or f"routed by rule {decision.rule}")


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
