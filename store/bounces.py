"""Bounces of our own mail: note them on the ticket and stop mailing the address.

A bounce names the mail it is about in one of three places: its own
In-Reply-To/References, the returned original (``message/rfc822``) or the
returned headers (``text/rfc822-headers``); old MTAs just paste the original
headers into the text. We look in all of them for a Message-ID we made
(``sd.<outbox>.<ticket>.<hmac tag>``) and then for one stored in the outbox.
The HMAC tag means a stranger cannot forge a "bounce" that silences someone's
address without having seen a mail we sent them.

Only permanent failures suppress: a DSN whose every ``Action`` is
``delayed`` (or whose status is 4.x.x) is noted on the ticket and nothing
more, because the mail may still arrive.
"""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.message import Message

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ingest.mail import InboundMail
from store import outbox as outbox_store
from store.models import Event, Outbox, Ticket

_ANY_MSG_ID = re.compile(rb"<([^<>\s]{1,250}@[^<>\s]{1,250})>")
_OURS = re.compile(rb"sd\.\d{1,18}\.\d{1,18}\.[0-9a-f]{12}@[A-Za-z0-9.-]{1,253}")
_SCAN_LIMIT = 512 * 1024
_MAX_PARTS = 200


def _headers_in(message: Message) -> list[Message]:
    """The returned original's headers: attached message, or text/rfc822-headers."""
    found: list[Message] = []
    for index, part in enumerate(message.walk()):
        if index > _MAX_PARTS:
            break
        kind = part.get_content_type()
        if kind == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                found.append(inner[0])
        elif kind == "text/rfc822-headers":
            raw = part.get_payload(decode=True)
            if isinstance(raw, bytes):
                found.append(message_from_bytes(raw, policy=policy.compat32))
    return found


def _dsn_fields(message: Message) -> list[tuple[str, str, str]]:
    """(recipient, action, status) per recipient block of message/delivery-status parts."""
    fields: list[tuple[str, str, str]] = []
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        if not isinstance(blocks, list):
            continue
        for block in blocks[1:]:  # the first block is per-message, the rest per recipient
            if not isinstance(block, Message):
                continue
            recipient = str(block.get("Final-Recipient") or block.get("Original-Recipient") or "")
            recipient = recipient.split(";", 1)[-1].strip().strip("<>").lower()
            fields.append(
                (
                    recipient,
                    str(block.get("Action", "")).strip().lower(),
                    str(block.get("Status", "")),
                )
            )
    return fields


def candidate_ids(mail: InboundMail, raw: bytes) -> list[str]:
    """Message-IDs the bounce may refer to, most reliable first, without brackets."""
    ids: list[str] = [mail.in_reply_to, *reversed(mail.references)]
    parsed = message_from_bytes(raw[: _SCAN_LIMIT * 4], policy=policy.compat32)
    for headers in _headers_in(parsed):
        for name in ("Message-ID", "In-Reply-To", "References"):
            value = str(headers.get(name, "")).encode("utf-8", "replace")
            ids += [m.decode("ascii", "replace") for m in _ANY_MSG_ID.findall(value)]
    ids += [m.decode("ascii") for m in _OURS.findall(raw[:_SCAN_LIMIT])]
    return [i for i in dict.fromkeys(ids) if i]


async def _our_row(session: AsyncSession, ids: list[str]) -> Outbox | None:
    if not ids:
        return None
    return await session.scalar(
        select(Outbox).where(Outbox.message_id.in_(ids[:100])).order_by(Outbox.id.desc()).limit(1)
    )


def _permanent(fields: list[tuple[str, str, str]], recipient: str) -> tuple[bool, str]:
    """Is this a final failure for ``recipient``? Plain-text bounces (no DSN) count as final."""
    mine = [f for f in fields if f[0] == recipient] or fields
    if not mine:
        return True, "bounce without delivery status"
    for _who, action, status in mine:
        if action == "failed" or status.strip().startswith("5"):
            return True, f"{action or 'failed'} {status}".strip()
    action, status = mine[0][1], mine[0][2]
    return False, f"{action or 'delayed'} {status}".strip()


async def record_bounce(session: AsyncSession, mail: InboundMail, raw: bytes) -> int | None:
    """Note a bounce of our mail on its ticket and suppress the address; the ticket id or None.

    Runs in the caller's transaction (the pipeline's, for mail the guards
    judged ``bounce``). Returns None when the bounce is not about a mail we
    sent; the caller then just ignores it as before.
    """
    row = await _our_row(session, candidate_ids(mail, raw))
    if row is None:
        return None
    fields = _dsn_fields(message_from_bytes(raw[: _SCAN_LIMIT * 4], policy=policy.compat32))
    recipient = row.recipient.lower()
    final, summary = _permanent(fields, recipient)
    if final:
        await outbox_store.suppress(
            session, recipient, f"bounce of outbox #{row.id} ({row.template}): {summary}"[:500]
        )
        row.last_error = f"bounced: {summary}"[:2000]
    if row.ticket_id is None or await session.get(Ticket, row.ticket_id) is None:
        await session.flush()
        return None
    session.add(
        Event(
            ticket_id=row.ticket_id,
            kind="bounce",
            actor="system",
            public=False,
            data={
                "outbox_id": row.id,
                "template": row.template,
                "recipient": recipient,
                "final": final,
                "summary": summary[:300],
                "suppressed": final,
                "bounce_message_id": mail.message_id,
            },
        )
    )
    await session.flush()
    return row.ticket_id
