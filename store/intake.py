"""The intake log: every received mail, its raw bytes, and what became of it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ingest.mail import InboundMail
from ingest.outcome import SourceRef
from store.models import Intake, RawMessage


@dataclass(frozen=True, slots=True)
class Received:
    """A mail as the store sees it before any decision: bytes, identity, source."""

    raw: bytes
    sha256: str
    source: SourceRef

    @classmethod
    def of(cls, raw: bytes, source: SourceRef) -> Received:
        return cls(raw=raw, sha256=hashlib.sha256(raw).hexdigest(), source=source)

    def dedup_key(self, mail: InboundMail | None) -> str:
        """Message-ID when there is one, else the raw hash: the same mail twice is one key."""
        if mail is not None and mail.message_id:
            return f"mid:{mail.message_id}"
        return f"sha256:{self.sha256}"


async def store_raw(session: AsyncSession, *received: Received) -> None:
    """Insert raw bytes once per content; a second copy of the same bytes is a no-op."""
    rows = list(
        {
            r.sha256: {"sha256": r.sha256, "size": len(r.raw), "data": r.raw} for r in received
        }.values()
    )
    if not rows:
        return
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    await session.execute(insert(RawMessage).on_conflict_do_nothing(), rows)


def row_values(
    received: Received,
    dedup_key: str,
    action: str,
    reason: str = "",
    ticket_id: int | None = None,
) -> dict[str, Any]:
    """The intake row's columns; its raw bytes must be stored in the same transaction."""
    return dict(
        dedup_key=dedup_key,
        source_key=received.source.key or None,
        source_kind=received.source.kind,
        source_name=received.source.name[:1000],
        raw_sha256=received.sha256,
        action=action,
        reason=reason[:2000],
        ticket_id=ticket_id,
        quarantine_state="held" if action == "quarantined" else "",
    )


async def record(
    session: AsyncSession,
    received: Received,
    dedup_key: str,
    action: str,
    reason: str = "",
    ticket_id: int | None = None,
) -> Intake:
    await store_raw(session, received)
    row = Intake(**row_values(received, dedup_key, action, reason, ticket_id))
    session.add(row)
    await session.flush()
    return row


async def find_many(
    session: AsyncSession, dedup_keys: list[str], source_keys: list[str]
) -> tuple[dict[str, Intake], dict[str, Intake]]:
    """Earlier intake rows of a group of mails: by dedup key, and by source key."""
    conditions = [Intake.dedup_key.in_(dedup_keys)]
    if source_keys:
        conditions.append(Intake.source_key.in_(source_keys))
    by_dedup: dict[str, Intake] = {}
    by_source: dict[str, Intake] = {}
    for row in (await session.scalars(select(Intake).where(or_(*conditions)))).all():
        by_dedup[row.dedup_key] = row
        if row.source_key:
            by_source[row.source_key] = row
    return by_dedup, by_source


async def raw_bytes(session: AsyncSession, sha256: str) -> bytes | None:
    row = await session.get(RawMessage, sha256)
    return None if row is None else row.data
