"""The agent JSON API under ``/api/v1``: the same store actions the CLI uses.

Every route but the schema needs ``Authorization: Bearer <agent token>``;
the agent's name becomes the actor of every event the request causes.
Input is validated by hand against the documented schema (see openapi.py)
so a bad request is a 400 or 422 with a reason, never a 500.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from servicedesk.web import serialise
from servicedesk.web.context import WebContext, client_address, web_context
from servicedesk.web.openapi import schema
from store import actions, agents, views
from store.db import transaction
from store.models import Agent, Ticket

MAX_BODY = 256 * 1024

Handler = Callable[[Request, Agent], Awaitable[Response]]


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def authenticated(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Resolve the bearer token to an agent, or answer 401.

    Failed attempts (only those) spend the client's rate-limit tokens, so
    agents working normally are never throttled but a guesser soon is.
    """

    async def endpoint(request: Request) -> Response:
        context = web_context(request)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        agent = None
        if scheme.lower() == "bearer" and token.strip():
            async with context.runtime.sessions() as session:
                agent = await agents.authenticate(session, token.strip())
        if agent is None:
            if not context.limiter.allow(client_address(request)):
                return error(429, "too many failed attempts", {"Retry-After": "60"})
            return error(
                401, "a valid agent bearer token is required", {"WWW-Authenticate": "Bearer"}
            )
        return await handler(request, agent)

    return endpoint


async def _json_body(request: Request) -> dict[str, Any] | JSONResponse:
    body = await request.body()
    if len(body) > MAX_BODY:
        return error(413, "body too large")
    try:
        data = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return error(400, "body is not valid JSON")
    if not isinstance(data, dict):
        return error(422, "body must be a JSON object")
    return data


def _csv(request: Request, name: str) -> tuple[str, ...]:
    values: list[str] = []
    for raw in request.query_params.getlist(name):
        values += [v.strip() for v in raw.split(",") if v.strip()]
    return tuple(values)


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"[0-9]{1,12}", raw) or not low <= int(raw) <= high:
        return None
    return int(raw)


@authenticated
async def list_tickets(request: Request, _agent: Agent) -> Response:
    context = web_context(request)
    limit = _int_param(request, "limit", 50, 1, 500)
    offset = _int_param(request, "offset", 0, 0, 10**9)
    if limit is None or offset is None:
        return error(422, "limit must be 1..500 and offset >= 0")
    spec = views.TicketFilter(
        status=_csv(request, "status"),
        category=_csv(request, "category"),
        organisation=_csv(request, "organisation"),
        assignee=request.query_params.get("assignee"),
        text=request.query_params.get("q", "")[:200],
        limit=limit,
        offset=offset,
    )
    async with context.runtime.sessions() as session:
        rows, total = await views.list_tickets(session, spec)
    numbering = context.runtime.numbering
    return JSONResponse(
        {"total": total, "tickets": [serialise.ticket_summary(t, numbering) for t in rows]}
    )


async def _ticket(
    session: Any, request: Request, context: WebContext, *, for_update: bool = False
) -> Ticket | None:
    return await views.ticket_by_number(
        session, request.path_params["ref"], context.runtime.numbering, for_update=for_update
    )


async def _detail_response(
    context: WebContext, ticket: Ticket, status: int = 200, **extra: Any
) -> JSONResponse:
    async with context.runtime.sessions() as session:
        detail = await views.ticket_detail(session, ticket)
    body = serialise.ticket_detail(detail, context.runtime.numbering)
    body.update(extra)
    return JSONResponse(body, status_code=status)


@authenticated
async def show_ticket(request: Request, _agent: Agent) -> Response:
    context = web_context(request)
    async with context.runtime.sessions() as session:
        ticket = await _ticket(session, request, context)
    if ticket is None:
        return error(404, "no such ticket")
    return await _detail_response(context, ticket)


@authenticated
async def change_ticket(request: Request, agent: Agent) -> Response:
    context = web_context(request)
    data = await _json_body(request)
    if isinstance(data, JSONResponse):
        return data
    unknown = sorted(set(data) - set(actions.CHANGE_FIELDS))
    if unknown:
        return error(422, f"unknown field(s): {', '.join(unknown)}")
    if any(not isinstance(v, str) for v in data.values()):
        return error(422, "every field must be a string")
    try:
        async with transaction(context.runtime.sessions, writer=True) as session:
            ticket = await _ticket(session, request, context, for_update=True)
            if ticket is None:
                return error(404, "no such ticket")
            events = await actions.apply_changes(session, ticket, data, actor=agent.name)
    except actions.ActionError as exc:  # raised inside: the whole change is rolled back
        return error(422, str(exc))
    return await _detail_response(context, ticket, changed=[e.kind for e in events])


def _posting(kind: str) -> Handler:
    async def post(request: Request, agent: Agent) -> Response:
        context = web_context(request)
        data = await _json_body(request)
        if isinstance(data, JSONResponse):
            return data
        text = data.get("text")
        if not isinstance(text, str):
            return error(422, "field 'text' (string) is required")
        act = actions.public_reply if kind == "reply" else actions.internal_note
        try:
            async with transaction(context.runtime.sessions, writer=True) as session:
                ticket = await _ticket(session, request, context, for_update=True)
                if ticket is None:
                    return error(404, "no such ticket")
                posted = await act(session, ticket, text, actor=agent.name)
                body = {
                    "message": serialise.message(posted.message, []),
                    "event_id": posted.event.id,
                    "outbox_id": posted.outbox_id,
                }
        except actions.ActionError as exc:
            return error(422, str(exc))
        return JSONResponse(body, status_code=201)

    return post


async def openapi_json(_request: Request) -> Response:
    return JSONResponse(schema())


def routes() -> list[Route]:
    return [
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/tickets", list_tickets, methods=["GET"]),
        Route("/tickets/{ref}", show_ticket, methods=["GET"]),
        Route("/tickets/{ref}", change_ticket, methods=["PATCH"]),
        Route("/tickets/{ref}/replies", authenticated(_posting("reply")), methods=["POST"]),
        Route("/tickets/{ref}/notes", authenticated(_posting("note")), methods=["POST"]),
    ]
