"""Store rows as JSON-ready dicts, one shape per OpenAPI schema.

Shared by the API and ``servicedesk ticket show --json`` so both print the
same fields; the keys here are the ones openapi.py documents.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from store.models import Attachment, Event, Message, Ticket
from store.tickets import Numbering
from store.views import TicketDetail


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def ticket_summary(ticket: Ticket, numbering: Numbering) -> dict[str, Any]:
    return {
        "number": numbering.format(ticket.id),
        "id": ticket.id,
        "subject": ticket.subject,
        "status": ticket.status,
        "category": ticket.category,
        "subcategory": ticket.subcategory,
        "organisation": ticket.organisation,
        "priority": ticket.priority,
        "language": ticket.language,
        "assignee": ticket.assignee,
        "requester_email": ticket.requester_email,
        "requester_name": ticket.requester_name,
        "created_at": _when(ticket.created_at),
        "updated_at": _when(ticket.updated_at),
    }


def attachment(row: Attachment) -> dict[str, Any]:
    return {
        "id": row.id,
        "filename": row.filename,
        "content_type": row.content_type,
        "size": row.size,
        "sha256": row.sha256,
        "storage": row.storage,
        "dropped_reason": row.dropped_reason,
    }


def message(row: Message, attachments: list[Attachment]) -> dict[str, Any]:
    return {
        "id": row.id,
        "direction": row.direction,
        "visibility": row.visibility,
        "verified": row.verified,
        "from_email": row.from_email,
        "from_name": row.from_name,
        "author": row.author,
        "subject": row.subject,
        "text": row.text,
        "html": row.html,
        "created_at": _when(row.created_at),
        "attachments": [attachment(a) for a in attachments],
    }


def event(row: Event) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "actor": row.actor,
        "public": row.public,
        "old": row.old,
        "new": row.new,
        "message_id": row.message_id,
        "data": row.data,
        "created_at": _when(row.created_at),
    }


def ticket_detail(detail: TicketDetail, numbering: Numbering) -> dict[str, Any]:
    ticket = detail.ticket
    body = ticket_summary(ticket, numbering)
    body.update(
        {
            "rule": ticket.rule,
            "rules_version": ticket.rules_version,
            "reasons": list(ticket.reasons),
            "tags": list(ticket.tags),
            "resolved_at": _when(ticket.resolved_at),
            "closed_at": _when(ticket.closed_at),
            "messages": [message(m, detail.attachments.get(m.id, [])) for m in detail.messages],
            "events": [event(e) for e in detail.events],
            "feedback": None
            if detail.feedback is None
            else {
                "helpful": detail.feedback.helpful,
                "comment": detail.feedback.comment,
                "updated_at": _when(detail.feedback.updated_at),
            },
            "outbox": [
                {"id": o.id, "template": o.template, "state": o.state, "recipient": o.recipient}
                for o in detail.outbox
            ],
        }
    )
    return body
