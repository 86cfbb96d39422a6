"""The agent API's OpenAPI 3.0 document, written by hand.

Hand-written rather than generated because the API is six routes on plain
Starlette; adding FastAPI and pydantic models just to emit this would
double the web layer.  The schemathesis test in tests/web checks that the
running API and this document agree, so it cannot drift silently.
"""

from __future__ import annotations

from typing import Any

from classify.categories import ALL_SUBCATEGORIES, CATEGORIES, PRIORITIES
from store.tickets import STATUSES

_STR = {"type": "string"}
_STR_NULL = {"type": "string", "nullable": True}
_INT = {"type": "integer"}
_BOOL = {"type": "boolean"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required or list(props)}


_SUMMARY = {
    "number": {"type": "string", "example": "SD-000123"},
    "id": _INT,
    "subject": _STR,
    "status": {"type": "string", "enum": list(STATUSES)},
    "category": _STR,
    "subcategory": _STR,
    "organisation": _STR,
    "priority": _STR,
    "language": _STR,
    "assignee": _STR,
    "requester_email": _STR,
    "requester_name": _STR,
    "created_at": _STR_NULL,
    "updated_at": _STR_NULL,
}

_SCHEMAS: dict[str, Any] = {
    "Error": _obj({"error": _STR}),
    "TicketSummary": _obj(_SUMMARY),
    "TicketList": _obj(
        {"total": _INT, "tickets": {"type": "array", "items": _ref("TicketSummary")}}
    ),
    "Attachment": _obj(
        {
            "id": _INT,
            "filename": _STR,
            "content_type": _STR,
            "size": _INT,
            "sha256": _STR,
            "storage": {"type": "string", "enum": ["disk", "db", "dropped"]},
            "dropped_reason": _STR,
        }
    ),
    "Message": _obj(
        {
            "id": _INT,
            "direction": _STR,
            "visibility": {"type": "string", "enum": ["public", "internal"]},
            "verified": _BOOL,
            "from_email": _STR,
            "from_name": _STR,
            "author": _STR,
            "subject": _STR,
            "text": _STR,
            "html": {"type": "string", "description": "sanitised at intake"},
            "created_at": _STR_NULL,
            "attachments": {"type": "array", "items": _ref("Attachment")},
        }
    ),
    "Event": _obj(
        {
            "id": _INT,
            "kind": _STR,
            "actor": _STR,
            "public": _BOOL,
            "old": _STR,
            "new": _STR,
            "message_id": {"type": "integer", "nullable": True},
            "data": {"type": "object"},
            "created_at": _STR_NULL,
        }
    ),
    "Feedback": {
        **_obj({"helpful": _BOOL, "comment": _STR, "updated_at": _STR_NULL}),
        "nullable": True,
    },
    "TicketDetail": {
        "allOf": [
            _ref("TicketSummary"),
            _obj(
                {
                    "rule": _STR,
                    "rules_version": _STR,
                    "reasons": {
                        "type": "array",
                        "items": _STR,
                        "description": "why the rules routed it so",
                    },
                    "tags": {"type": "array", "items": _STR},
                    "resolved_at": _STR_NULL,
                    "closed_at": _STR_NULL,
                    "messages": {"type": "array", "items": _ref("Message")},
                    "events": {"type": "array", "items": _ref("Event")},
                    "feedback": _ref("Feedback"),
                    "outbox": {
                        "type": "array",
                        "items": _obj(
                            {"id": _INT, "template": _STR, "state": _STR, "recipient": _STR}
                        ),
                    },
                    "changed": {
                        "type": "array",
                        "items": _STR,
                        "description": "PATCH only: kinds of the events it created",
                    },
                },
                ["rule", "reasons", "messages", "events", "feedback"],
            ),
        ]
    },
    "Change": {
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "properties": {
            "status": {"type": "string", "enum": list(STATUSES)},
            "category": {"type": "string", "enum": list(CATEGORIES)},
            "subcategory": {"type": "string", "enum": sorted(ALL_SUBCATEGORIES)},
            "priority": {"type": "string", "enum": list(PRIORITIES)},
            "assignee": {"type": "string", "maxLength": 128},
        },
    },
    "Text": _obj(  # non-blank after NULs are dropped, as store.actions checks
        {"text": {"type": "string", "minLength": 1, "maxLength": 50000, "pattern": r"[^\s\x00]"}}
    ),
    "Posted": _obj(
        {
            "message": _ref("Message"),
            "event_id": _INT,
            "outbox_id": {"type": "integer", "nullable": True},
        }
    ),
}


def _json(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


_ERRORS = {
    "401": _json("Error", "no or invalid bearer token"),
    "429": _json("Error", "too many failed authentication attempts"),
}
_TICKET_ERRORS = {**_ERRORS, "404": _json("Error", "no such ticket")}
_BODY_ERRORS = {
    **_TICKET_ERRORS,
    "400": _json("Error", "body is not JSON"),
    "413": _json("Error", "body too large"),
    "422": _json("Error", "invalid field or value"),
}
_REF_PARAM = {
    "name": "ref",
    "in": "path",
    "required": True,
    "schema": _STR,
    "description": "ticket number (SD-000123) or its numeric id",
}


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema or _STR,
        "description": description,
    }


def _body(name: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(name)}}}


_PATHS: dict[str, Any] = {
    "/tickets": {
        "get": {
            "summary": "List and filter tickets, newest first",
            "operationId": "listTickets",
            "parameters": [
                _query("status", "comma-separated statuses"),
                _query("category", "comma-separated categories or subcategories"),
                _query("organisation", "comma-separated organisation ids"),
                _query("assignee", "exact assignee; empty string for unassigned"),
                _query("q", "text in subject, requester address or message text"),
                _query("limit", "page size", {"type": "integer", "minimum": 1, "maximum": 500}),
                _query(
                    "offset", "rows to skip", {"type": "integer", "minimum": 0, "maximum": 10**9}
                ),
            ],
            "responses": {
                "200": _json("TicketList", "matching tickets"),
                "422": _json("Error", "bad limit or offset"),
                **_ERRORS,
            },
        }
    },
    "/tickets/{ref}": {
        "parameters": [_REF_PARAM],
        "get": {
            "summary": "One ticket with all messages (internal too), events and routing reasons",
            "operationId": "showTicket",
            "responses": {"200": _json("TicketDetail", "the ticket"), **_TICKET_ERRORS},
        },
        "patch": {
            "summary": "Change status, category/subcategory, priority or assignee",
            "description": "Each change is an event with the agent as actor; a status change "
            "queues a status_changed (or resolved) mail to the requester.",
            "operationId": "changeTicket",
            "requestBody": _body("Change"),
            "responses": {"200": _json("TicketDetail", "the changed ticket"), **_BODY_ERRORS},
        },
    },
    "/tickets/{ref}/replies": {
        "parameters": [_REF_PARAM],
        "post": {
            "summary": "Public reply: shown on the status page and mailed (agent_reply)",
            "operationId": "replyToTicket",
            "requestBody": _body("Text"),
            "responses": {"201": _json("Posted", "reply stored, mail queued"), **_BODY_ERRORS},
        },
    },
    "/tickets/{ref}/notes": {
        "parameters": [_REF_PARAM],
        "post": {
            "summary": "Internal note: for agents only, never shown or mailed",
            "operationId": "addNote",
            "requestBody": _body("Text"),
            "responses": {"201": _json("Posted", "note stored"), **_BODY_ERRORS},
        },
    },
}


def schema(server_url: str = "") -> dict[str, Any]:
    """The document, with ``servers`` pointing at this API's base when known."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "servicedesk agent API",
            "version": "1",
            "description": "Bearer tokens come from `servicedesk agent add NAME`.",
        },
        "servers": [{"url": f"{server_url}/api/v1" if server_url else "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": _PATHS,
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
