"""Every ticket event becomes one outbox row per webhook URL, in the event's own transaction.

The rows are added by a flush hook on the runtime's session class, so no code
path that records an event (pipeline, agent API, CLI, jobs) can forget to
notify the mirror, and nothing global is configured.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, UOWTransaction

from store.models import Event, Outbox
from store.tickets import Numbering

_PENDING = "webhook_events"

# Event kinds as the mirror sees them; everything else is "ticket.updated".
NAMES = {
    "created": "ticket.created",
    "status": "ticket.status_changed",
    "feedback": "ticket.feedback",
}


def payload(row: Event, numbering: Numbering) -> dict[str, Any]:
    return {
        "event": NAMES.get(row.kind, "ticket.updated"),
        "kind": row.kind,
        "ticket": numbering.format(row.ticket_id),
        "ticket_id": row.ticket_id,
        "event_id": row.id,
        "actor": row.actor,
        "public": row.public,
        "old": row.old,
        "new": row.new,
        "at": row.created_at.isoformat() if row.created_at else None,
    }


def session_class(urls: Sequence[str], numbering: Numbering) -> type[Session]:
    """A Session subclass whose flushes queue webhook rows for new events."""

    class WebhookSession(Session):
        pass

    def collect(session: Session, _context: UOWTransaction, _instances: object) -> None:
        new = [obj for obj in session.new if isinstance(obj, Event)]
        if new:
            session.info.setdefault(_PENDING, []).extend(new)

    def enqueue(session: Session, _context: UOWTransaction) -> None:
        events: list[Event] = session.info.pop(_PENDING, [])
        for row in events:
            body = payload(row, numbering)
            for url in urls:
                session.add(
                    Outbox(kind="webhook", template=body["event"], ticket_id=row.ticket_id,
                           event_id=row.id, recipient=url, payload=body)
                )  # fmt: skip

    event.listen(WebhookSession, "before_flush", collect)
    event.listen(WebhookSession, "after_flush_postexec", enqueue)
    return WebhookSession
