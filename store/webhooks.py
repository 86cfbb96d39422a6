"""Every ticket event becomes one outbox row per webhook URL, in the event's own transaction.

The rows are added by a flush hook on the runtime's session class, so no code
path that records an event (pipeline, agent API, CLI, jobs) can forget to
notify the mirror, and nothing global is configured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
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
    return _payload(
        row.kind, row.ticket_id, row.id, row.actor, row.public, row.old, row.new,
        row.created_at, numbering,
    )  # fmt: skip


def _payload(
    kind: str,
    ticket_id: int,
    event_id: int,
    actor: str,
    public: bool,
    old: str,
    new: str,
    at: datetime | None,
    numbering: Numbering,
) -> dict[str, Any]:
    return {
        "event": NAMES.get(kind, "ticket.updated"),
        "kind": kind,
        "ticket": numbering.format(ticket_id),
        "ticket_id": ticket_id,
        "event_id": event_id,
        "actor": actor,
        "public": public,
        "old": old,
        "new": new,
        "at": at.isoformat() if at else None,
    }


def _outbox(body: dict[str, Any], url: str) -> Outbox:
    return Outbox(kind="webhook", template=body["event"], ticket_id=body["ticket_id"],
                  event_id=body["event_id"], recipient=url, payload=body)  # fmt: skip


def queue_inserted(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Webhook rows for events written with a plain INSERT (store.apply's bulk
    path), which the flush hooks never see; nothing when no URL is configured."""
    urls: tuple[str, ...] = getattr(type(session), "webhook_urls", ())
    if not urls:
        return
    numbering: Numbering = type(session).webhook_numbering  # type: ignore[attr-defined]
    for v in rows:
        body = _payload(
            v["kind"], v["ticket_id"], v["id"], v["actor"], v["public"], v["old"], v["new"],
            v["created_at"], numbering,
        )  # fmt: skip
        for url in urls:
            session.add(_outbox(body, url))


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
        events: list[Event] = session.info.pop(_PENDING, [])
        for row in events:
            body = payload(row, numbering)
            for url in urls:
                session.add(_outbox(body, url))

    event.listen(WebhookSession, "before_flush", collect)
    event.listen(WebhookSession, "after_flush_postexec", enqueue)
    return WebhookSession
