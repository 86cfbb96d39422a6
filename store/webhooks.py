"""Every ticket event becomes one outbox row per webhook URL, in the event's own transaction.

The rows are added by a flush hook on the runtime's session class, so no code
path that records an event (pipeline, agent API, CLI, jobs) can forget to
notify the mirror, and nothing global is configured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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


# What a webhook body says of an event, by the Event attribute it comes from.
_FIELDS = ("kind", "ticket_id", "id", "actor", "public", "old", "new", "created_at")


def payload(row: Event | Mapping[str, Any], numbering: Numbering) -> dict[str, Any]:
    """The body for an ORM event or for the column values of an inserted one."""
    v = row if isinstance(row, Mapping) else {name: getattr(row, name) for name in _FIELDS}
    return {
        "event": NAMES.get(v["kind"], "ticket.updated"),
        "kind": v["kind"],
        "ticket": numbering.format(v["ticket_id"]),
        "ticket_id": v["ticket_id"],
        "event_id": v["id"],
        "actor": v["actor"],
        "public": v["public"],
        "old": v["old"],
        "new": v["new"],
        "at": v["created_at"].isoformat() if v["created_at"] else None,
    }


def queue_events(session: Session, rows: Sequence[Event | Mapping[str, Any]]) -> None:
    """One outbox row per event and URL; nothing when no URL is configured.

    The flush hooks below call it for ORM events; store.apply's bulk path calls
    it for the events it writes with a plain INSERT, which flushes never see.
    """
    urls: tuple[str, ...] = getattr(type(session), "webhook_urls", ())
    if not urls:
        return
    numbering: Numbering = type(session).webhook_numbering  # type: ignore[attr-defined]
    for row in rows:
        body = payload(row, numbering)
        for url in urls:
            session.add(
                Outbox(kind="webhook", template=body["event"], ticket_id=body["ticket_id"],
                       event_id=body["event_id"], recipient=url, payload=body)
            )  # fmt: skip


def session_class(urls: Sequence[str], numbering: Numbering) -> type[Session]:
    """A Session subclass whose flushes queue webhook rows for new events."""

    class WebhookSession(Session):
        webhook_urls = tuple(urls)
        webhook_numbering = numbering

    def collect(session: Session, _context: UOWTransaction, _instances: object) -> None:
        new = [obj for obj in session.new if isinstance(obj, Event)]
        if new:
            session.info.setdefault(_PENDING, []).extend(new)

    def enqueue(session: Session, _context: UOWTransaction) -> None:
        queue_events(session, session.info.pop(_PENDING, []))

    event.listen(WebhookSession, "before_flush", collect)
    event.listen(WebhookSession, "after_flush_postexec", enqueue)
    return WebhookSession
