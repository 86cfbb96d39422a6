"""What agents and requesters do to a ticket outside mail: one function per action.

The web API, the status page and the ``servicedesk ticket`` command all call
these, so a change made from any of them leaves the same trail: an Event
naming who did it, and (where the requester should hear about it) an outbox
row in the same transaction.  Like ``store.tickets`` these never commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from classify.categories import ALL_SUBCATEGORIES, CATEGORIES, PRIORITIES, category_of
from store import tickets
from store.models import AccessToken, Event, Feedback, Message, Ticket, utcnow
from store.outbox import enqueue_mail
from store.tokens import new_nonce, token_for, token_hash

CHANGE_FIELDS = ("status", "category", "subcategory", "priority", "assignee")
MAX_TEXT = 50_000  # a reply longer than this is a paste accident, not a message


class ActionError(ValueError):
    """The action is not allowed or its input is invalid; the message says why."""


def _notify(ticket: Ticket) -> bool:
    """Whether the requester may be mailed: an address, and no rule said "never reply"."""
    return bool(ticket.requester_email) and not ticket.suppress_reply


def _no_nul(text: str) -> str:
    """PostgreSQL text columns reject NUL; it never carries meaning in a message."""
    return text.replace("\x00", "")


def _clean_text(text: str) -> str:
    text = _no_nul(text).replace("\r\n", "\n").strip()
    if not text:
        raise ActionError("text is empty")
    if len(text) > MAX_TEXT:
        raise ActionError(f"text is longer than {MAX_TEXT} characters")
    return text


async def change_status(
    session: AsyncSession, ticket: Ticket, status: str, *, actor: str, notify: bool = True
) -> Event | None:
    """Set the status; queue ``resolved`` or ``status_changed`` mail. None if unchanged."""
    if status not in tickets.STATUSES:
        raise ActionError(f"unknown status {status!r}; one of {', '.join(tickets.STATUSES)}")
    event = await tickets.set_status(session, ticket, status, actor=actor)
    if event is not None and notify and _notify(ticket):
        template = "resolved" if status == "resolved" else "status_changed"
        await enqueue_mail(
            session, ticket, template, ticket.requester_email, event=event,
            payload={"old": event.old, "new": event.new},
        )  # fmt: skip
    return event


async def _field_event(
    session: AsyncSession, ticket: Ticket, kind: str, old: str, new: str, actor: str
) -> Event:
    """Internal-only history of a reclassification (the page shows category, not its history)."""
    ticket.updated_at = utcnow()
    return await tickets.add_event(
        session, ticket, kind, actor=actor, public=False, old=old, new=new
    )


async def change_category(
    session: AsyncSession, ticket: Ticket, category: str, *, actor: str, subcategory: str = ""
) -> list[Event]:
    """Category and subcategory move together; a subcategory implies its category."""
    if category and category not in CATEGORIES:
        raise ActionError(f"unknown category {category!r}; one of {', '.join(CATEGORIES)}")
    if subcategory:
        if subcategory not in ALL_SUBCATEGORIES:
            raise ActionError(f"unknown subcategory {subcategory!r}")
        if category and category_of(subcategory) != category:
            raise ActionError(f"subcategory {subcategory!r} is not in category {category!r}")
        category = category_of(subcategory)
    events: list[Event] = []
    if category and category != ticket.category:
        events.append(
            await _field_event(session, ticket, "category", ticket.category, category, actor)
        )
        ticket.category = category
        if not subcategory and category_of(ticket.subcategory) != category:
            subcategory = category  # the old subcategory belongs to the old category
    if subcategory and subcategory != ticket.subcategory:
        events.append(
            await _field_event(
                session, ticket, "subcategory", ticket.subcategory, subcategory, actor
            )
        )
        ticket.subcategory = subcategory
    return events


async def change_priority(
    session: AsyncSession, ticket: Ticket, priority: str, *, actor: str
) -> Event | None:
    if priority not in PRIORITIES:
        raise ActionError(f"unknown priority {priority!r}; one of {', '.join(PRIORITIES)}")
    if priority == ticket.priority:
        return None
    event = await _field_event(session, ticket, "priority", ticket.priority, priority, actor)
    ticket.priority = priority
    return event


async def change_assignee(
    session: AsyncSession, ticket: Ticket, assignee: str, *, actor: str
) -> Event | None:
    """Assign to a name (free text: agents may be groups); an empty string unassigns."""
    assignee = _no_nul(assignee).strip()
    if len(assignee) > 128:
        raise ActionError("assignee is longer than 128 characters")
    if assignee == ticket.assignee:
        return None
    event = await _field_event(session, ticket, "assignee", ticket.assignee, assignee, actor)
    ticket.assignee = assignee
    return event


async def apply_changes(
    session: AsyncSession, ticket: Ticket, changes: Mapping[str, str], *, actor: str
) -> list[Event]:
    """Several field changes in a fixed order (status last, so its mail sees the rest).

    Shared by the API's PATCH and ``servicedesk ticket set``; an ActionError
    from any field leaves the caller to roll the whole transaction back.
    """
    unknown = sorted(set(changes) - set(CHANGE_FIELDS))
    if unknown:
        raise ActionError(f"unknown field(s): {', '.join(unknown)}")
    events: list[Event | None] = []
    if changes.get("category") or changes.get("subcategory"):
        events += await change_category(
            session, ticket, changes.get("category", ""), actor=actor,
            subcategory=changes.get("subcategory", ""),
        )  # fmt: skip
    if "priority" in changes:
        events.append(await change_priority(session, ticket, changes["priority"], actor=actor))
    if "assignee" in changes:
        events.append(await change_assignee(session, ticket, changes["assignee"], actor=actor))
    if "status" in changes:
        events.append(await change_status(session, ticket, changes["status"], actor=actor))
    return [e for e in events if e is not None]


@dataclass(frozen=True, slots=True)
class Posted:
    """A message an action added, and the outbox row it queued (if any)."""

    message: Message
    event: Event
    outbox_id: int | None


async def public_reply(session: AsyncSession, ticket: Ticket, text: str, *, actor: str) -> Posted:
    """An agent's answer, shown on the page and mailed as ``agent_reply``.

    A reply to a ``new`` ticket moves it to ``open`` without a separate
    status mail: the reply itself tells the requester someone is on it.
    """
    message = Message(
        ticket_id=ticket.id, direction="out", visibility="public", subject=f"Re: {ticket.subject}",
        text=_clean_text(text), author=actor, verified=True,
    )  # fmt: skip
    session.add(message)
    await session.flush()
    event = await tickets.add_event(session, ticket, "agent_reply", actor=actor, message=message)
    if ticket.status == "new":
        await change_status(session, ticket, "open", actor=actor, notify=False)
    ticket.updated_at = utcnow()
    outbox_id = None
    if _notify(ticket):
        row = await enqueue_mail(
            session, ticket, "agent_reply", ticket.requester_email, event=event,
            payload={"message_id": message.id},
        )  # fmt: skip
        outbox_id = row.id
    return Posted(message, event, outbox_id)


async def internal_note(session: AsyncSession, ticket: Ticket, text: str, *, actor: str) -> Posted:
    """A note for agents only: never on the page, never mailed."""
    message = Message(
        ticket_id=ticket.id, direction="out", visibility="internal", subject=ticket.subject,
        text=_clean_text(text), author=actor, verified=True,
    )  # fmt: skip
    session.add(message)
    await session.flush()
    event = await tickets.add_event(
        session, ticket, "note", actor=actor, public=False, message=message
    )
    return Posted(message, event, None)


async def requester_comment(session: AsyncSession, ticket: Ticket, text: str) -> Posted:
    """A comment from the status page: the same effect as a verified mail reply.

    Holding the view token is the proof of identity, as a reply token in the
    address is for mail; a resolved ticket reopens (``reopened`` mail), a
    waiting one goes back to ``open``.  Closed tickets take no comments: the
    page tells the requester to write a new mail instead.
    """
    if ticket.status == "closed":
        raise ActionError("ticket is closed")
    actor = ticket.requester_email or "requester"
    message = Message(
        ticket_id=ticket.id, direction="in", visibility="public", subject=f"Re: {ticket.subject}",
        from_email=ticket.requester_email, from_name=ticket.requester_name,
        text=_clean_text(text), full_text=_no_nul(text), author="", verified=True,
    )  # fmt: skip
    session.add(message)
    await session.flush()
    event = await tickets.add_event(
        session, ticket, "reply", actor=actor, message=message, data={"via": "web"}
    )
    template = "ack_reply"
    if ticket.status == "resolved":
        await tickets.set_status(session, ticket, "open", actor=actor)
        template = "reopened"
    elif ticket.status == "waiting":
        await tickets.set_status(session, ticket, "open", actor=actor)
    ticket.updated_at = utcnow()
    outbox_id = None
    if _notify(ticket):
        row = await enqueue_mail(session, ticket, template, ticket.requester_email, event=event)
        outbox_id = row.id
    return Posted(message, event, outbox_id)


async def record_feedback(
    session: AsyncSession, ticket: Ticket, helpful: bool, comment: str = "", *, actor: str = ""
) -> Feedback:
    """One feedback row per ticket; giving it again replaces it (and both are in history)."""
    if ticket.status not in ("resolved", "closed"):
        raise ActionError("feedback is asked only once the ticket is resolved")
    comment = _no_nul(comment).replace("\r\n", "\n").strip()[:4000]
    row = await session.get(Feedback, ticket.id)
    old = ""
    if row is None:
        row = Feedback(ticket_id=ticket.id, helpful=helpful, comment=comment)
        session.add(row)
    else:
        old = "helpful" if row.helpful else "not helpful"
        row.helpful = helpful
        row.comment = comment
        row.updated_at = utcnow()
    await tickets.add_event(
        session, ticket, "feedback", actor=actor or ticket.requester_email or "requester",
        public=False, old=old, new="helpful" if helpful else "not helpful",
        data={"comment": comment},
    )  # fmt: skip
    await session.flush()
    return row


async def rotate_view_token(
    session: AsyncSession, ticket: Ticket, secret_key: bytes, *, actor: str = "system"
) -> str:
    """Revoke every live view link of the ticket and return a fresh one's token.

    Used when a link leaked (forwarded mail, shared screen): the old URL
    answers 404 from the next request on.
    """
    now = utcnow()
    await session.execute(
        update(AccessToken)
        .where(
            AccessToken.ticket_id == ticket.id,
            AccessToken.purpose == "view",
            AccessToken.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    nonce = new_nonce()
    token = token_for(secret_key, "view", nonce)
    session.add(
        AccessToken(ticket_id=ticket.id, purpose="view", nonce=nonce, token_hash=token_hash(token))
    )
    await tickets.add_event(session, ticket, "token_rotated", actor=actor, public=False)
    await session.flush()
    return token


async def current_view_token(
    session: AsyncSession, ticket_id: int, secret_key: bytes
) -> str | None:
    """The newest live view token, rebuilt from its nonce (how mails get their link)."""
    nonce = await session.scalar(
        select(AccessToken.nonce)
        .where(
            AccessToken.ticket_id == ticket_id,
            AccessToken.purpose == "view",
            AccessToken.revoked_at.is_(None),
        )
        .order_by(AccessToken.id.desc())
        .limit(1)
    )
    return None if nonce is None else token_for(secret_key, "view", nonce)
