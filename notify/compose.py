"""From rendered text to an ``EmailMessage`` whose headers nobody can subvert.

Everything that came from a requester (their name, their subject) passes
``one_line`` and then ``email.headerregistry``; the ``SMTP`` policy folds
long lines and RFC 2047-encodes non-ASCII, and refuses CR/LF in values, so
a subject like ``"hi\\r\\nBcc: x@evil"`` stays one harmless subject line.

The Message-ID is a function of the outbox row: ``sd.<outbox>.<ticket>.<tag>``
where ``tag`` is an HMAC under the server key. The same row always yields the
same id, so a resend after a crash is recognisable as a duplicate, replies
thread via References, and nobody who has not seen the mail can forge an id
that our bounce handling would accept.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from notify.context import Prepared
from notify.render import AUTOMATIC, Rendered, one_line

_ADDR_SPEC = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9.-]{1,253}$")
_MSG_ID = re.compile(r"^[\x21-\x3b\x3d\x3f-\x7e]{1,250}@[\x21-\x3b\x3d\x3f-\x7e]{1,250}$")
OUR_MESSAGE_ID = re.compile(r"sd\.(\d{1,18})\.(\d{1,18})\.([0-9a-f]{12})@[A-Za-z0-9.-]+")


class BadAddress(ValueError):
    """An address we refuse to put in a header: the row fails, nothing is sent."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the desk is in mail: From, the Reply-To base and the Message-ID domain."""

    address: str
    name: str
    plus_addressing: bool

    @property
    def local(self) -> str:
        return self.address.rpartition("@")[0]

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]


def _tag(key: bytes, outbox_id: int, ticket_id: int) -> str:
    return hmac.new(key, f"mid:{outbox_id}:{ticket_id}".encode(), hashlib.sha256).hexdigest()[:12]


def message_id_for(outbox_id: int, ticket_id: int | None, key: bytes, domain: str) -> str:
    """``sd.<outbox>.<ticket>.<tag>@domain`` without angle brackets (as the store keeps ids)."""
    ticket = ticket_id or 0
    return f"sd.{outbox_id}.{ticket}.{_tag(key, outbox_id, ticket)}@{domain}"


def is_our_message_id(value: str, key: bytes) -> tuple[int, int] | None:
    """(outbox id, ticket id) when ``value`` is a Message-ID we made, else None."""
    match = OUR_MESSAGE_ID.search(value)
    if match is None:
        return None
    outbox_id, ticket_id = int(match.group(1)), int(match.group(2))
    if not hmac.compare_digest(_tag(key, outbox_id, ticket_id), match.group(3)):
        return None
    return outbox_id, ticket_id


def _address(addr_spec: str, name: str = "") -> Address:
    addr_spec = addr_spec.strip()
    if not _ADDR_SPEC.match(addr_spec):
        raise BadAddress(f"refusing address {addr_spec[:80]!r}")
    local, _, domain = addr_spec.rpartition("@")
    return Address(display_name=one_line(name, 200), username=local, domain=domain)


def _ids(values: tuple[str, ...]) -> str:
    kept = [v for v in values if _MSG_ID.match(v)]
    return " ".join(f"<{v}>" for v in dict.fromkeys(kept))


def reply_address(identity: Identity, reply_token: str) -> str:
    if identity.plus_addressing and reply_token:
        return f"{identity.local}+{reply_token}@{identity.domain}"
    return identity.address


def build_message(
    prepared: Prepared,
    rendered: Rendered,
    identity: Identity,
    *,
    message_id: str,
    now: datetime,
) -> EmailMessage:
    """The complete mail: multipart/alternative (text, then HTML), threaded, marked automatic."""
    message = EmailMessage(policy=SMTP)
    message["From"] = _address(identity.address, identity.name)
    message["To"] = _address(prepared.recipient, prepared.recipient_name)
    message["Reply-To"] = _address(reply_address(identity, prepared.reply_token), identity.name)
    subject = one_line(rendered.subject)
    if prepared.number:
        subject = f"[{prepared.number}] {subject}"
    message["Subject"] = subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = f"<{message_id}>"
    if prepared.in_reply_to and _MSG_ID.match(prepared.in_reply_to):
        message["In-Reply-To"] = f"<{prepared.in_reply_to}>"
    references = _ids(
        prepared.references or ((prepared.in_reply_to,) if prepared.in_reply_to else ())
    )
    if references:
        message["References"] = references
    # RFC 3834: answers to a mail are auto-replied; notices agents trigger are
    # auto-generated. Either way the requester's robots must stay quiet.
    automatic = prepared.template in AUTOMATIC
    message["Auto-Submitted"] = "auto-replied" if automatic else "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    if prepared.number:
        message["X-Servicedesk-Ticket"] = prepared.number
    message.set_content(rendered.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(rendered.html, subtype="html", charset="utf-8", cte="quoted-printable")
    return message
