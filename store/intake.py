"""The intake log: every received mail, its raw bytes, and what became of it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

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


async def find_existing(session: AsyncSession, dedup_key: str, source_key: str) -> Intake | None:
    conditions = [Intake.dedup_key == dedup_key]
    if source_key:
        conditions.append(Intake.source_key == source_key)
    result = await session.execute(select(Intake).where(or_(*conditions)).limit(1))
    return result.scalar_one_or_none()


async def store_raw(session: AsyncSession, received: Received) -> None:
    """Insert the raw bytes once; a second copy of the same bytes is a no-op."""
    values = {"sha256": received.sha256, "size": len(received.raw), "data": received.raw}
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(RawMessage).values(**values).on_conflict_do_nothing()
    await session.execute(statement)


async def record(
    session: AsyncSession,
    received: Received,
    dedup_key: str,
    action: str,
    reason: str = "",
    ticket_id: int | None = None,
) -> Intake:
    await store_raw(session, received)
    row = Intake(
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
    session.add(row)
    await session.flush()
    return row


async def raw_bytes(session: AsyncSession, sha256: str) -> bytes | None:
    row = await session.get(RawMessage, sha256)
    return None if row is None else row.data
