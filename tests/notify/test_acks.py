"""Acknowledgements as the requester receives them, from a real SMTP server."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from store.models import AccessToken, Outbox
from store.tokens import token_hash
from tests.notify.conftest import BASE_URL, DESK, Desk, make_mail, text_of

LINK = re.compile(re.escape(BASE_URL) + r"/t/([A-Za-z0-9_-]{20,})")

CASES = [
    # route, subject, expected phrases in the text part
    ("it.device_fault fi", "Tulostin ei toimi", ["Hei Maija Meikäläinen", "013 339 0700", "07.30–16.00", "vastaanottaneet"]),
    ("hr.pay_question sv", "Fel i lönen", ["Hej Maija Meikäläinen", "013 339 0750", "09.00–15.00", "tagit emot"]),
    ("hr.tax en", "Tax card", ["Hello Maija Meikäläinen", "013 339 0750", "09.00–15.00", "received your request"]),
    ("it.password fi", "Salasana vanhentunut", ["salasanan vaihdon itsepalvelussa", "013 339 0700"]),
    ("it.password sv", "Lösenordet har gått ut", ["självbetjäningen för lösenordsbyte", "013 339 0700"]),
    ("it.password en", "Password expired", ["self-service password change", "013 339 0700"]),
    ("order.workstation fi pohjois-karjala-edu", "Uusi kannettava", ["koulukaupan", "013 339 0700"]),
    ("order.workstation en pohjois-karjala-edu", "New laptop", ["school shop"]),
]  # fmt: skip


@pytest.mark.smtp
@pytest.mark.parametrize(("route_to", "subject", "phrases"), CASES)
async def test_acknowledgement_content(
    desk: Desk, route_to: str, subject: str, phrases: list[str]
) -> None:
    outcome = await desk.ingest(make_mail(subject=subject, route_to=route_to))
    assert outcome.ticket == "SD-000001"
    assert await desk.worker.drain_once() == 1
    [mail] = desk.received()
    assert mail["Subject"].startswith("[SD-000001] ")
    assert subject in mail["Subject"]
    assert mail["To"].addresses[0].addr_spec == "maija.meikalainen@eksote.fi"
    assert mail["Auto-Submitted"] == "auto-replied"
    assert mail["X-Auto-Response-Suppress"] == "All"
    assert mail["In-Reply-To"] == "<m1@eksote.fi>"
    assert mail.get_content_type() == "multipart/alternative"
    text, html = text_of(mail), text_of(mail, "html")
    for phrase in phrases:
        assert phrase in text, phrase
    other = "013 339 0750" if "013 339 0700" in phrases else "013 339 0700"
    if "013 339 0700" in phrases or "013 339 0750" in phrases:
        assert other not in text
    # The tracking link: base_url/t/<token>, and the token is a stored view token.
    tokens = LINK.findall(text)
    assert tokens and set(tokens) == set(LINK.findall(html))
    async with desk.runtime.sessions() as session:
        stored = await session.scalar(
            select(AccessToken).where(AccessToken.token_hash == token_hash(tokens[0]))
        )
        assert stored is not None and stored.purpose == "view" and stored.ticket_id == 1
        row = (await session.scalars(select(Outbox))).one()
        assert row.state == "sent" and row.attempts == 1
        assert mail["Message-ID"] == f"<{row.message_id}>"


@pytest.mark.smtp
async def test_reply_to_carries_reply_token_when_plus_addressing(desk: Desk) -> None:
    await desk.ingest(make_mail())
    await desk.worker.drain_once()
    [mail] = desk.received()
    reply_to = mail["Reply-To"].addresses[0].addr_spec
    local, _, domain = reply_to.partition("@")
    assert domain == DESK.split("@")[1]
    base, _, token = local.partition("+")
    assert base == "servicedesk" and len(token) >= 16
    async with desk.runtime.sessions() as session:
        stored = await session.scalar(
            select(AccessToken).where(AccessToken.token_hash == token_hash(token))
        )
        assert stored is not None and stored.purpose == "reply"
