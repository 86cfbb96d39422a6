"""The agent API over HTTP: auth, filters, changes with events and outbox rows, the schema."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from store import agents
from store.db import transaction
from store.models import Event, Message, Outbox, Ticket
from tests.web.conftest import Served
from tests.web.support import auth, ingest, mail


async def test_every_route_needs_a_valid_bearer_token(served: Served) -> None:
    await ingest(served.runtime, mail())
    async with transaction(served.runtime.sessions) as session:
        await agents.add_agent(session, "gone")
        disabled_token = await agents.add_agent(session, "gone", rotate=True)
        await agents.disable_agent(session, "gone")
    calls = [
        ("GET", "/api/v1/tickets", None),
        ("GET", "/api/v1/tickets/SD-000001", None),
        ("PATCH", "/api/v1/tickets/SD-000001", {"status": "open"}),
        ("POST", "/api/v1/tickets/SD-000001/replies", {"text": "hi"}),
        ("POST", "/api/v1/tickets/SD-000001/notes", {"text": "hi"}),
    ]
    bad_headers = [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer sda_wrong"},
        {"Authorization": f"Basic {served.agent_token}"},
        {"Authorization": f"Bearer {served.agent_token}x"},
        auth(disabled_token),
    ]
    for method, path, body in calls:
        for headers in bad_headers:
            response = await served.client.request(method, path, json=body, headers=headers)
            assert response.status_code == 401, (method, path, headers)
            assert response.headers["www-authenticate"] == "Bearer"
            assert "SD-000001" not in response.text
    async with served.runtime.sessions() as session:
        ticket = await session.get(Ticket, 1)
        assert ticket is not None and ticket.status == "new"  # nothing changed
    ok = await served.client.get("/api/v1/tickets", headers=auth(served.agent_token))
    assert ok.status_code == 200 and ok.headers["cache-control"] == "no-store"


async def test_list_filters(served: Served) -> None:
    await ingest(served.runtime, mail(subject="Tulostin jumissa", message_id="a@eksote.fi"))
    await ingest(
        served.runtime,
        mail(sender="kalle@siunsote.fi", subject="Verokortti", text="Uusi verokortti liitteenä",
             message_id="b@siunsote.fi"),
    )  # fmt: skip
    headers = auth(served.agent_token)
    client = served.client
    await client.patch("/api/v1/tickets/SD-000002", json={"status": "open"}, headers=headers)
    everything = (await client.get("/api/v1/tickets", headers=headers)).json()
    assert everything["total"] == 2
    assert [t["number"] for t in everything["tickets"]] == ["SD-000002", "SD-000001"]

    async def numbers(**params: str) -> list[str]:
        response = await client.get("/api/v1/tickets", params=params, headers=headers)
        assert response.status_code == 200, response.text
        return [t["number"] for t in response.json()["tickets"]]

    assert await numbers(category="hr") == ["SD-000002"]
    assert await numbers(category="it,hr") == ["SD-000002", "SD-000001"]
    assert await numbers(organisation="siun-sote") == ["SD-000002"]
    assert await numbers(status="new") == ["SD-000001"]
    assert await numbers(status="open,waiting") == ["SD-000002"]
    assert await numbers(q="VEROKORTTI liitteenä") == ["SD-000002"]  # message text, any case
    assert await numbers(q="tulostin") == ["SD-000001"]
    assert await numbers(q="100%") == []
    assert await numbers(limit="1") == ["SD-000002"]
    assert await numbers(limit="1", offset="1") == ["SD-000001"]
    bad = await client.get("/api/v1/tickets", params={"limit": "0"}, headers=headers)
    assert bad.status_code == 422


async def test_show_has_messages_internal_notes_events_and_reasons(served: Served) -> None:
    await ingest(served.runtime, mail())
    headers = auth(served.agent_token)
    note = await served.client.post(
        "/api/v1/tickets/SD-000001/notes", json={"text": "Soitin käyttäjälle"}, headers=headers
    )
    assert note.status_code == 201 and note.json()["outbox_id"] is None
    body = (await served.client.get("/api/v1/tickets/sd-1", headers=headers)).json()
    assert body["number"] == "SD-000001"
    assert body["rule"] and body["reasons"]
    assert [(m["direction"], m["visibility"]) for m in body["messages"]] == [
        ("in", "public"),
        ("out", "internal"),
    ]
    assert [e["kind"] for e in body["events"]] == ["created", "note"]
    assert body["events"][1]["actor"] == "anna" and body["events"][1]["public"] is False
    missing = await served.client.get("/api/v1/tickets/SD-999999", headers=headers)
    assert missing.status_code == 404 and missing.json() == {"error": "no such ticket"}


async def test_status_change_makes_an_event_and_queues_mail(served: Served) -> None:
    await ingest(served.runtime, mail())
    headers = auth(served.agent_token)
    changed = await served.client.patch(
        "/api/v1/tickets/SD-000001",
        json={"status": "waiting", "priority": "high", "assignee": "anna"},
        headers=headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["changed"] == ["priority", "assignee", "status"]
    resolved = await served.client.patch(
        "/api/v1/tickets/SD-000001", json={"status": "resolved"}, headers=headers
    )
    assert resolved.status_code == 200
    async with served.runtime.sessions() as session:
        events = (
            await session.scalars(select(Event).where(Event.kind == "status").order_by(Event.id))
        ).all()
        assert [(e.old, e.new, e.actor) for e in events] == [
            ("new", "waiting", "anna"),
            ("waiting", "resolved", "anna"),
        ]
        mails = (
            await session.scalars(
                select(Outbox).where(Outbox.template != "ack_new").order_by(Outbox.id)
            )
        ).all()
        assert [(o.template, o.payload, o.recipient, o.event_id) for o in mails] == [
            ("status_changed", {"old": "new", "new": "waiting"}, "maija.meikalainen@eksote.fi",
             events[0].id),
            ("resolved", {"old": "waiting", "new": "resolved"}, "maija.meikalainen@eksote.fi",
             events[1].id),
        ]  # fmt: skip
        ticket = await session.get(Ticket, 1)
        assert ticket is not None
        assert (ticket.priority, ticket.assignee, ticket.status) == ("high", "anna", "resolved")
        assert ticket.resolved_at is not None


async def test_invalid_changes_are_rejected_whole(served: Served) -> None:
    await ingest(served.runtime, mail())
    headers = auth(served.agent_token)
    for body in (
        {"status": "done"},
        {"priority": "high", "status": "bogus"},
        {"category": "it", "subcategory": "hr.tax"},
        {"colour": "red"},
        {"status": 3},
    ):
        response = await served.client.patch("/api/v1/tickets/1", json=body, headers=headers)
        assert response.status_code == 422, body
    not_json = await served.client.patch(
        "/api/v1/tickets/1", content=b"{", headers={**headers, "content-type": "application/json"}
    )
    assert not_json.status_code == 400
    async with served.runtime.sessions() as session:
        ticket = await session.get(Ticket, 1)
        assert ticket is not None and (ticket.priority, ticket.status) == ("normal", "new")
        assert (await session.scalars(select(Event).where(Event.kind != "created"))).all() == []


async def test_public_reply_is_stored_shown_and_queued(served: Served) -> None:
    created = await ingest(served.runtime, mail())
    headers = auth(served.agent_token)
    reply = await served.client.post(
        "/api/v1/tickets/SD-000001/replies", json={"text": "Kokeile toista kaapelia."},
        headers=headers,
    )  # fmt: skip
    assert reply.status_code == 201, reply.text
    posted = reply.json()
    async with served.runtime.sessions() as session:
        outbox = await session.get(Outbox, posted["outbox_id"])
        assert outbox is not None and outbox.template == "agent_reply"
        assert outbox.payload == {"message_id": posted["message"]["id"]}
        message = await session.get(Message, posted["message"]["id"])
        assert message is not None and message.author == "anna"
        ticket = await session.get(Ticket, 1)
        assert ticket is not None and ticket.status == "open"  # a reply opens a new ticket
    page = (await served.client.get(created.path)).text
    assert "Kokeile toista kaapelia." in page
    empty = await served.client.post(
        "/api/v1/tickets/1/replies", json={"text": "   "}, headers=headers
    )
    assert empty.status_code == 422


async def test_openapi_documents_the_routes(served: Served) -> None:
    schema = (await served.client.get("/api/v1/openapi.json")).json()
    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) == {
        "/tickets", "/tickets/{ref}", "/tickets/{ref}/replies", "/tickets/{ref}/notes"
    }  # fmt: skip
    assert set(schema["paths"]["/tickets/{ref}"]) >= {"get", "patch"}
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


async def test_simultaneous_changes_to_one_ticket_mail_the_requester_once(served: Served) -> None:
    """Ten agents press "resolve" at once: one change, one event, one mail; none fails."""
    await ingest(served.runtime, mail())
    headers = auth(served.agent_token)
    responses = await asyncio.gather(
        *(
            served.client.patch("/api/v1/tickets/SD-000001", json={"status": "resolved"},
                                headers=headers)
            for _ in range(10)
        )
    )  # fmt: skip
    assert [r.status_code for r in responses] == [200] * 10
    assert sorted(len(r.json()["changed"]) for r in responses) == [0] * 9 + [1]
    async with served.runtime.sessions() as session:
        events = (await session.scalars(select(Event).where(Event.kind == "status"))).all()
        mails = (await session.scalars(select(Outbox).where(Outbox.template == "resolved"))).all()
    assert len(events) == 1 and len(mails) == 1
