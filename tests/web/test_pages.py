"""The status page against the real app over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from store import actions
from store.db import transaction
from store.models import Event, Feedback, Message, Outbox, Ticket, utcnow
from tests.web.conftest import Served, serve
from tests.web.support import XSS_HTML, XSS_TEXT, form_nonce, ingest, mail

SECURITY = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


async def _set_status(served: Served, ticket_id: int, status: str) -> None:
    async with transaction(served.runtime.sessions) as session:
        ticket = await session.get(Ticket, ticket_id)
        assert ticket is not None
        await actions.change_status(session, ticket, status, actor="anna")


async def test_page_shows_number_status_category_contact_and_history(served: Served) -> None:
    created = await ingest(served.runtime, mail(text="Tulostin ei tulosta mitään."))
    await _set_status(served, created.ticket_id, "open")
    page = await served.client.get(created.path)
    assert page.status_code == 200
    html = page.text
    assert created.number in html
    assert "Näyttö ei toimi" in html
    assert 'id="status-name">Käsittelyssä<' in html  # open, in Finnish (ticket language)
    assert "Käsittelijä työskentelee" in html  # what happens next
    assert "IT-tuki" in html and "013 339 0700" in html
    assert "Etelä-Karjala" in html
    assert "Tulostin ei tulosta mitään." in html  # the public message
    assert "Vastaanotettu → Käsittelyssä" in html  # the status change in the timeline
    for name, value in SECURITY.items():
        assert page.headers[name] == value
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert "frame-ancestors 'none'" in csp and "form-action 'self'" in csp


async def test_language_switch_and_hr_contact_line(served: Served) -> None:
    created = await ingest(served.runtime, mail())
    async with transaction(served.runtime.sessions) as session:
        ticket = await session.get(Ticket, created.ticket_id)
        assert ticket is not None
        await actions.change_category(session, ticket, "", subcategory="hr.tax", actor="anna")
    sv = (await served.client.get(created.path, params={"lang": "sv"})).text
    assert 'lang="sv"' in sv and "Mottaget" in sv and "Skattekort" in sv
    assert "013 339 0750" in sv and "013 339 0700" not in sv
    en = (await served.client.get(created.path, params={"lang": "en"})).text
    assert "Received" in en and "Payroll and HR" in en and "weekdays 09.00–15.00" in en
    junk = (await served.client.get(created.path, params={"lang": "xx"})).text
    assert 'lang="fi"' in junk


async def test_internal_notes_never_reach_the_page(served: Served) -> None:
    created = await ingest(served.runtime, mail())
    async with transaction(served.runtime.sessions) as session:
        ticket = await session.get(Ticket, created.ticket_id)
        assert ticket is not None
        await actions.internal_note(session, ticket, "SECRET-NOTE about the user", actor="anna")
        await actions.public_reply(session, ticket, "Käynnistä kone uudelleen.", actor="anna")
    html = (await served.client.get(created.path)).text
    assert "SECRET-NOTE" not in html
    assert "Käynnistä kone uudelleen." in html
    assert "anna" not in html  # agents appear as "the service desk"


async def test_unknown_guessed_revoked_and_numbers_all_get_the_same_404(served: Served) -> None:
    created = await ingest(served.runtime, mail())
    reference = await served.client.get("/t/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    assert reference.status_code == 404
    # Tokens are case-insensitive base32, so a wrong one must differ in more than case.
    wrong = created.token[:-1] + ("2" if created.token[-1] != "2" else "3")
    probes = ["/t/SD-000001", "/t/1", "/t/000001", f"/t/{wrong}", f"/t/{created.token}x",
              "/t/" + "A" * 200, "/t/%00", "/tickets/1", "/t/"]  # fmt: skip
    for path in probes:
        response = await served.client.get(path)
        assert response.status_code == 404, path
        assert response.text == reference.text, path  # nothing differs between the cases
        assert created.number not in response.text
    async with transaction(served.runtime.sessions) as session:
        ticket = await session.get(Ticket, created.ticket_id)
        assert ticket is not None
        fresh = await actions.rotate_view_token(session, ticket, served.runtime.secret_key)
    old = await served.client.get(created.path)
    assert old.status_code == 404 and old.text == reference.text
    assert (await served.client.get(f"/t/{fresh}")).status_code == 200


async def test_link_expires_days_after_close(served: Served) -> None:
    created = await ingest(served.runtime, mail())
    await _set_status(served, created.ticket_id, "closed")
    assert (await served.client.get(created.path)).status_code == 200  # just closed: still there
    days = served.runtime.settings.web.token_days_after_close
    async with transaction(served.runtime.sessions) as session:
        ticket = await session.get(Ticket, created.ticket_id)
        assert ticket is not None
        ticket.closed_at = utcnow() - timedelta(days=days, minutes=1)
    assert (await served.client.get(created.path)).status_code == 404


async def test_script_and_onerror_in_mail_are_escaped_or_stripped(served: Served) -> None:
    text_only = await ingest(served.runtime, mail(text=XSS_TEXT, message_id="x1@eksote.fi"))
    html = (await served.client.get(text_only.path)).text
    assert "<script>" not in html and "onerror=" not in html.replace("onerror=&#34;", "")
    assert "&lt;script&gt;" in html  # shown as text, escaped
    html_only = await ingest(
        served.runtime,
        mail(text="", html=XSS_HTML, message_id="x2@eksote.fi", subject="<script>x</script>"),
    )
    async with transaction(served.runtime.sessions) as session:  # force the HTML branch
        ticket = await session.get(Ticket, html_only.ticket_id)
        assert ticket is not None
        for message in (
            await session.scalars(select(Message).where(Message.ticket_id == ticket.id))
        ).all():
            message.text = ""
    page = (await served.client.get(html_only.path)).text
    lowered = page.lower()
    assert "<script" not in lowered
    assert "onerror" not in lowered and "onmouseover" not in lowered
    assert "javascript:" not in lowered
    assert "<p>Hei</p>" in page  # harmless markup survives
    assert "&lt;script&gt;x&lt;/script&gt;" in page  # subject escaped


async def test_feedback_stored_once_and_changeable(served: Served) -> None:
    created = await ingest(served.runtime, mail())
    page = await served.client.get(created.path)
    assert "Oliko tästä apua?" not in page.text  # not resolved yet: no question
    await _set_status(served, created.ticket_id, "resolved")
    nonce = await form_nonce(served.client, created.path, "feedback")
    first = await served.client.post(
        created.path, data={"form": "feedback", "nonce": nonce, "helpful": "yes", "lang": "en",
                            "comment": "Thanks!"},
    )  # fmt: skip
    assert first.status_code == 303
    assert first.headers["location"] == f"{created.path}?lang=en&done=feedback"
    second = await served.client.post(
        created.path, data={"form": "feedback", "nonce": nonce, "helpful": "no", "comment": "Still broken"},
    )  # fmt: skip
    assert second.status_code == 303
    async with served.runtime.sessions() as session:
        rows = (await session.scalars(select(Feedback))).all()
        assert [(r.ticket_id, r.helpful, r.comment) for r in rows] == [
            (created.ticket_id, False, "Still broken")
        ]
        kinds = (await session.scalars(select(Event.kind).where(Event.kind == "feedback"))).all()
        assert len(kinds) == 2
    shown = (await served.client.get(created.path, params={"lang": "en"})).text
    assert "Was this helpful?" in shown and "Still broken" in shown


async def test_forms_without_a_valid_nonce_change_nothing(served: Served) -> None:
    created = await ingest(served.runtime, mail())
    await _set_status(served, created.ticket_id, "resolved")
    other = await ingest(served.runtime, mail(message_id="other@eksote.fi"))
    await _set_status(served, other.ticket_id, "resolved")
    foreign = await form_nonce(served.client, other.path, "feedback")  # another ticket's nonce
    for nonce in ("", "123.abc", foreign):
        response = await served.client.post(
            created.path, data={"form": "feedback", "nonce": nonce, "helpful": "yes"}
        )
        assert response.status_code == 303 and "done=stale" in response.headers["location"]
    async with served.runtime.sessions() as session:
        assert (await session.scalars(select(Feedback))).all() == []


async def test_comment_reopens_a_resolved_ticket_like_a_verified_reply(served: Served) -> None:
    created = await ingest(served.runtime, mail())
    await _set_status(served, created.ticket_id, "resolved")
    nonce = await form_nonce(served.client, created.path, "comment")
    response = await served.client.post(
        created.path, data={"form": "comment", "nonce": nonce, "text": "Ei se vieläkään toimi."}
    )
    assert response.status_code == 303 and "done=comment" in response.headers["location"]
    async with served.runtime.sessions() as session:
        ticket = await session.get(Ticket, created.ticket_id)
        assert ticket is not None and ticket.status == "open"
        templates = (await session.scalars(select(Outbox.template).order_by(Outbox.id))).all()
        assert templates[-1] == "reopened"
        reply = (await session.scalars(select(Event).where(Event.kind == "reply"))).one()
        assert reply.actor == "maija.meikalainen@eksote.fi" and reply.data == {"via": "web"}
    page = (await served.client.get(created.path)).text
    assert "Ei se vieläkään toimi." in page and "Käsittelyssä" in page


async def test_attachment_download_is_token_scoped_and_forced_to_download(served: Served) -> None:
    payload = b"%PDF-1.4 fake pdf bytes"
    created = await ingest(
        served.runtime, mail(attachment=("lasku ä.pdf", "application/pdf", payload))
    )
    page = (await served.client.get(created.path)).text
    assert "lasku ä.pdf" in page
    import re

    found = re.search(rf'href="({created.path}/a/(\d+))"', page)
    assert found
    response = await served.client.get(found.group(1))
    assert response.status_code == 200
    assert response.content == payload
    assert response.headers["content-type"] == "application/pdf"
    disposition = response.headers["content-disposition"]
    assert (
        disposition.startswith("attachment;")
        and "filename*=UTF-8''lasku%20%C3%A4.pdf" in disposition
    )
    assert response.headers["x-content-type-options"] == "nosniff"
    other = await ingest(served.runtime, mail(message_id="o@eksote.fi"))
    stolen = await served.client.get(f"{other.path}/a/{found.group(2)}")
    assert stolen.status_code == 404  # another ticket's link cannot fetch it


async def test_rate_limit_on_token_lookups(runtime) -> None:
    async for served in serve(runtime, lookups_per_minute=1, lookup_burst=5):
        codes = [(await served.client.get(f"/t/{'A' * 32}")).status_code for _ in range(8)]
        assert codes[:5] == [404] * 5
        assert codes[5:] == [429] * 3
        limited = await served.client.get(f"/t/{'B' * 32}")
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert limited.headers["cache-control"] == "no-store"


async def test_unicode_digits_and_odd_input_never_cause_a_server_error(served: Served) -> None:
    created = await ingest(served.runtime, mail())
    await _set_status(served, created.ticket_id, "resolved")
    for nonce in ("²³.abc", "１２.abc", "\x00", "9" * 40 + ".x"):
        response = await served.client.post(
            created.path, data={"form": "feedback", "nonce": nonce, "helpful": "yes"}
        )
        assert response.status_code == 303
    odd = await served.client.post(created.path, content=b"form=comment&text=%00%FF&nonce=%B2")
    assert odd.status_code == 303
