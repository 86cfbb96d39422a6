"""A requester's whole conversation by mail, through the real pipeline and a real SMTP server."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from ingest.outcome import Action
from ingest.parse import ParseLimits, parse_mail
from store import tickets
from store.bounces import record_bounce
from store.db import transaction
from store.models import Event, Message, Outbox, Suppression, Ticket
from store.outbox import enqueue_mail
from tests.notify.conftest import DESK, Desk, make_mail, text_of

pytestmark = pytest.mark.smtp


async def test_full_conversation(desk: Desk) -> None:
    # 1. New mail -> acknowledgement.
    created = await desk.ingest(make_mail(subject="Tulostin ei toimi", message_id="m1@eksote.fi"))
    assert created.action is Action.CREATED
    assert await desk.worker.drain_once() == 1
    [ack] = desk.received()
    ack_id = str(ack["Message-ID"]).strip("<>")
    # 2. The requester answers the acknowledgement, quoting it.
    body = (
        "Kiitos! Lisätieto: kone on EKS-12345.\n\n"
        f"ma 3.6.2024 klo 10.02 Palvelupiste <{DESK}> kirjoitti:\n"
        "> Hei Maija,\n> olemme vastaanottaneet pyyntösi.\n"
    )
    reply = make_mail(
        subject=f"Re: {ack['Subject']}", body=body, message_id="m2@eksote.fi",
        to=str(ack["Reply-To"]),
        extra=f"In-Reply-To: <{ack_id}>\r\nReferences: <m1@eksote.fi> <{ack_id}>\r\n",
    )  # fmt: skip
    updated = await desk.ingest(reply)
    assert (updated.action, updated.ticket) == (Action.UPDATED, "SD-000001")
    async with desk.runtime.sessions() as session:
        stored = (
            await session.scalars(select(Message).where(Message.message_id == "m2@eksote.fi"))
        ).one()
        assert stored.text == "Kiitos! Lisätieto: kone on EKS-12345."
        assert "olemme vastaanottaneet" in stored.full_text
    assert await desk.worker.drain_once() == 1
    ack_reply = desk.received()[1]
    assert ack_reply["Subject"].startswith("[SD-000001] ")
    assert "Re:" not in ack_reply["Subject"]  # no "Re: [SD-…] …" chains in our subjects
    assert ack_reply["In-Reply-To"] == "<m2@eksote.fi>"
    assert f"<{ack_id}>" in ack_reply["References"]
    # 3. An agent changes the status -> status mail.
    async with transaction(desk.runtime.sessions) as session:
        ticket = await session.get(Ticket, 1)
        assert ticket is not None
        event = await tickets.set_status(session, ticket, "waiting", actor="agent:liisa")
        await enqueue_mail(session, ticket, "status_changed", ticket.requester_email, event=event,
                           payload={"old": "open", "new": "waiting"})  # fmt: skip
    assert await desk.worker.drain_once() == 1
    status_mail = desk.received()[2]
    assert "odottaa vastaustasi" in status_mail["Subject"]
    assert "käsittelyssä → odottaa vastaustasi" in text_of(status_mail)
    assert status_mail["Auto-Submitted"] == "auto-generated"
    # 4. Every mail we sent has its own Message-ID, all recorded on the outbox.
    ids = [str(m["Message-ID"]) for m in desk.received()]
    assert len(set(ids)) == 3
    async with desk.runtime.sessions() as session:
        states = (await session.scalars(select(Outbox.state))).all()
        assert list(states) == ["sent", "sent", "sent"]


async def test_reply_is_threaded_by_the_reply_token(desk: Desk) -> None:
    await desk.ingest(make_mail())
    await desk.worker.drain_once()
    [ack] = desk.received()
    reply = make_mail(subject="Another subject entirely", message_id="m2@eksote.fi",
                      to=str(ack["Reply-To"]))  # fmt: skip
    outcome = await desk.ingest(reply)
    assert (outcome.action, outcome.ticket) == (Action.UPDATED, "SD-000001")


async def test_out_of_office_and_bounce_get_no_reply(desk: Desk) -> None:
    await desk.ingest(make_mail())
    assert await desk.worker.drain_once() == 1
    [ack] = desk.received()
    ack_id = str(ack["Message-ID"]).strip("<>")
    oof = make_mail(
        subject=f"Automaattinen vastaus: {ack['Subject']}", message_id="oof@eksote.fi",
        body="Olen lomalla 10.6. asti.", extra="Auto-Submitted: auto-replied\r\n",
    )  # fmt: skip
    assert (await desk.ingest(oof)).action is Action.IGNORED
    bounce = dsn(ack_id, "maija.meikalainen@eksote.fi", "5.1.1")
    assert (await desk.ingest(bounce)).action is Action.IGNORED
    assert await desk.worker.drain_once() == 0
    assert len(desk.sink.messages) == 1
    # The bounce hook (wired by the pipeline owner) notes it and suppresses the address.
    mail = parse_mail(bounce, ParseLimits())
    assert not isinstance(mail, type(None))
    async with transaction(desk.runtime.sessions) as session:
        assert await record_bounce(session, mail, bounce) == 1  # type: ignore[arg-type]
    async with desk.runtime.sessions() as session:
        event = (await session.scalars(select(Event).where(Event.kind == "bounce"))).one()
        assert event.public is False and event.data["final"] is True
        assert await session.get(Suppression, "maija.meikalainen@eksote.fi") is not None
    # A later automatic mail to that address is skipped, with the reason.
    await desk.ingest(make_mail(message_id="m3@eksote.fi", subject="Uusi asia"))
    assert await desk.worker.drain_once() == 0
    async with desk.runtime.sessions() as session:
        last = (await session.scalars(select(Outbox).order_by(Outbox.id.desc()))).first()
        assert last is not None and last.state == "skipped"
        assert last.last_error.startswith("recipient suppressed")


def dsn(original_id: str, recipient: str, status: str) -> bytes:
    action = "failed" if status.startswith("5") else "delayed"
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.eksote.fi>\r\n"
        f"To: {DESK}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: <dsn-{status}@mx.eksote.fi>\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.eksote.fi\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: {action}\r\nStatus: {status}\r\n\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: Service desk <{DESK}>\r\nTo: {recipient}\r\n"
        f"Message-ID: <{original_id}>\r\nSubject: [SD-000001] ...\r\n\r\n"
        "--B--\r\n"
    ).encode()


async def test_delayed_dsn_is_noted_but_does_not_suppress(desk: Desk) -> None:
    await desk.ingest(make_mail())
    await desk.worker.drain_once()
    ack_id = str(desk.received()[0]["Message-ID"]).strip("<>")
    raw = dsn(ack_id, "maija.meikalainen@eksote.fi", "4.4.1")
    mail = parse_mail(raw, ParseLimits())
    async with transaction(desk.runtime.sessions) as session:
        assert await record_bounce(session, mail, raw) == 1  # type: ignore[arg-type]
    async with desk.runtime.sessions() as session:
        assert await session.get(Suppression, "maija.meikalainen@eksote.fi") is None


async def test_bounce_for_a_message_we_never_sent_is_not_ours(desk: Desk) -> None:
    await desk.ingest(make_mail())
    forged = dsn("sd.1.1.000000000000@example.org", "maija.meikalainen@eksote.fi", "5.1.1")
    mail = parse_mail(forged, ParseLimits())
    async with transaction(desk.runtime.sessions) as session:
        assert await record_bounce(session, mail, forged) is None  # type: ignore[arg-type]
        assert await session.get(Suppression, "maija.meikalainen@eksote.fi") is None


async def test_daily_cap_holds(desk: Desk) -> None:
    for i in range(11):
        await desk.ingest(make_mail(message_id=f"cap{i}@eksote.fi", subject=f"Asia numero {i}"))
    assert await desk.worker.drain_once() == 10
    assert len(desk.sink.messages) == 10
    async with desk.runtime.sessions() as session:
        skipped = (await session.scalars(select(Outbox).where(Outbox.state == "skipped"))).all()
    assert len(skipped) == 1 and "daily cap of 10" in skipped[0].last_error


async def test_stranger_reply_with_ticket_number_gets_no_mail_and_changes_nothing(
    desk: Desk,
) -> None:
    await desk.ingest(make_mail())
    await desk.worker.drain_once()
    spoof = make_mail(sender="mallory@evil.example", name="Mallory", message_id="x@evil.example",
                      subject="Re: [SD-000001] suljetaan", body="Sulkekaa tämä.")  # fmt: skip
    await desk.ingest(spoof)
    assert await desk.worker.drain_once() == 0
    assert [m.rcpt_tos for m in desk.sink.messages] == [("maija.meikalainen@eksote.fi",)]


async def test_encoded_display_name_cannot_choose_the_recipient(desk: Desk) -> None:
    name = "=?utf-8?q?Evil=0D=0ABcc=3A_victim=40example=2Ecom_?="
    await desk.ingest(make_mail(name=name))
    await desk.worker.drain_once()
    assert [m.rcpt_tos for m in desk.sink.messages] == [("maija.meikalainen@eksote.fi",)]


async def test_header_injection_is_inert(desk: Desk) -> None:
    # Encoded-words decode to CR/LF: the classic way to smuggle headers through a parser.
    name = "=?utf-8?q?Evil=0D=0AX-Injected=3A_1_<b>?="
    subject = "=?utf-8?q?Help=0D=0ABcc=3A_victim2=40example=2Ecom=0D=0A=0D=0Abody?= <script>"
    raw = make_mail(name=name, subject=subject + " " + "pitkä " * 60)
    await desk.ingest(raw)
    assert await desk.worker.drain_once() == 1
    [received] = desk.sink.messages
    assert received.rcpt_tos == ("maija.meikalainen@eksote.fi",)
    [mail] = desk.received()
    assert mail.get_all("Bcc") is None and mail.get_all("X-Injected") is None
    head = received.data.split(b"\r\n\r\n", 1)[0]
    assert b"\nBcc" not in head and b"victim" not in head.split(b"Subject:")[0]
    assert all(len(line) <= 998 for line in received.data.split(b"\r\n"))
    assert "\n" not in str(mail["Subject"]) and "\r" not in str(mail["Subject"])
    assert "Bcc: victim2@example.com" in str(mail["Subject"])  # inert text, one line
    html = text_of(mail, "html")
    assert "<script>" not in html and "&lt;script&gt;" in html
