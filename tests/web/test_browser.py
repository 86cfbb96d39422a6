"""Headless Chromium on the real status page: status text, feedback, and no script from mail.

The link is the one the acknowledgement mail carries (rebuilt from the
stored nonce exactly as the mailer does).  The XSS check runs twice: with
the page's CSP, and with CSP bypassed, so it proves the sanitiser alone
already keeps the payload inert.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import select

from servicedesk.runtime import Runtime
from store import actions
from store.db import transaction
from store.models import Feedback, Message, Ticket
from tests.web.cdp import browser, ensure_chromium
from tests.web.conftest import Served
from tests.web.support import XSS_HTML, XSS_TEXT, ingest, mail

pytestmark = pytest.mark.browser


@pytest.fixture(scope="session")
def chromium() -> Path:
    found = ensure_chromium()
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("chromium could not be installed (apt-get install chromium)")
        pytest.skip("chromium not available")
    return found


PROBE = "JSON.stringify({title: document.title, pwned: typeof window.pwned})"


async def _resolve(runtime: Runtime, ticket_id: int) -> None:
    async with transaction(runtime.sessions) as session:
        ticket = await session.get(Ticket, ticket_id)
        assert ticket is not None
        await actions.change_status(session, ticket, "resolved", actor="anna")


async def test_status_feedback_and_inert_payloads(
    served: Served, chromium: Path, tmp_path: Path
) -> None:
    runtime = served.runtime
    plain = await ingest(runtime, mail(text=XSS_TEXT, html=XSS_HTML, message_id="p@eksote.fi"))
    html_only = await ingest(runtime, mail(text=XSS_TEXT, html=XSS_HTML, message_id="h@eksote.fi"))
    async with transaction(runtime.sessions) as session:  # make the page use the HTML part
        for message in (
            await session.scalars(select(Message).where(Message.ticket_id == html_only.ticket_id))
        ).all():
            message.text = ""
    await _resolve(runtime, plain.ticket_id)

    async with browser(chromium, tmp_path / "profile") as page:
        for bypass_csp in (False, True):
            await page.send("Page.setBypassCSP", enabled=bypass_csp)
            for created in (plain, html_only):
                await page.navigate(f"{served.base_url}{created.path}")
                probe = await page.evaluate(PROBE)
                assert (
                    probe == f'{{"title":"{created.number} – Palvelupyyntö","pwned":"undefined"}}'
                )
                scripts = await page.evaluate("document.scripts.length")
                handlers = await page.evaluate(
                    "[...document.querySelectorAll('*')].filter(e => [...e.attributes]"
                    ".some(a => a.name.startsWith('on'))).length"
                )
                assert (scripts, handlers) == (0, 0)
        await page.send("Page.setBypassCSP", enabled=False)

        await page.navigate(f"{served.base_url}{plain.path}?lang=en")
        assert await page.evaluate("document.getElementById('status-name').textContent") == (
            "Resolved"
        )
        assert "resolved" in await page.evaluate(
            "document.getElementById('status-next').textContent"
        )
        question = await page.evaluate("document.querySelector('#feedback h2').textContent")
        assert question == "Was this helpful?"
        await page.submit_and_wait(
            "document.getElementById('helpful-yes').click();"
            "document.getElementById('feedback-comment').value = 'Toimii taas, kiitos!';"
            "document.getElementById('feedback-send').click()"
        )
        assert await page.evaluate("location.search") == "?lang=en&done=feedback"
        notice = await page.evaluate("document.getElementById('notice').textContent")
        assert notice.startswith("Thank you for your feedback")
        assert await page.evaluate("document.getElementById('helpful-yes').checked") is True

        await page.submit_and_wait(
            "document.getElementById('helpful-no').click();"
            "document.getElementById('feedback-send').click()"
        )
    async with runtime.sessions() as session:
        rows = (await session.scalars(select(Feedback))).all()
        assert [(r.ticket_id, r.helpful, r.comment) for r in rows] == [
            (plain.ticket_id, False, "Toimii taas, kiitos!")
        ]
