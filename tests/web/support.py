"""Helpers for the web tests: real mails into the pipeline, links built as the mailer builds them."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage

import httpx
from sqlalchemy import select

from ingest.outcome import Action, SourceRef
from servicedesk.runtime import Runtime
from store.models import AccessToken, Outbox
from store.tokens import token_for

XSS_TEXT = (
    "Hei, näyttö ei toimi.\n<script>document.title='pwned-text';window.pwned=1</script>\n"
    "<img src=x onerror=\"document.title='pwned-img-text'\">"
)
XSS_HTML = (
    "<p>Hei</p><script>document.title='pwned-html';window.pwned=1</script>"
    "<img src=x onerror=\"document.title='pwned-img'\">"
    "<a href=\"javascript:document.title='pwned-link'\">klikkaa</a>"
    '<div style="background:url(javascript:alert(1))" onmouseover="window.pwned=1">x</div>'
)


def mail(
    *,
    sender: str = "maija.meikalainen@eksote.fi",
    subject: str = "Näyttö ei toimi",
    text: str = "Hei, näyttö ei toimi.",
    html: str | None = None,
    message_id: str = "m1@eksote.fi",
    attachment: tuple[str, str, bytes] | None = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "servicedesk@example.org"
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{message_id}>"
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    if attachment is not None:
        filename, ctype, data = attachment
        maintype, subtype = ctype.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


@dataclass(frozen=True)
class Created:
    ticket_id: int
    number: str
    token: str

    @property
    def path(self) -> str:
        return f"/t/{self.token}"


async def ingest(runtime: Runtime, raw: bytes, name: str = "x") -> Created:
    """Run a mail through the real pipeline; return the link its acknowledgement carries."""
    outcome = await runtime.pipeline.process(raw, SourceRef("file", name))
    assert outcome.action is Action.CREATED, outcome
    assert outcome.ticket is not None
    async with runtime.sessions() as session:
        ack = (
            await session.scalars(
                select(Outbox).where(Outbox.template == "ack_new").order_by(Outbox.id.desc())
            )
        ).first()
        assert ack is not None and ack.ticket_id is not None
        nonce = await session.scalar(
            select(AccessToken.nonce).where(
                AccessToken.ticket_id == ack.ticket_id, AccessToken.purpose == "view"
            )
        )
    assert nonce is not None
    return Created(ack.ticket_id, outcome.ticket, token_for(runtime.secret_key, "view", nonce))


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def form_nonce(client: httpx.AsyncClient, path: str, form: str) -> str:
    """The nonce the page rendered for ``form`` (how a browser would submit)."""
    import re

    page = await client.get(path)
    assert page.status_code == 200, page.status_code
    pattern = rf'name="form" value="{form}">\s*<input type="hidden" name="nonce" value="([^"]+)"'
    found = re.search(pattern, page.text)
    assert found, f"no {form} form on the page"
    return found.group(1)
