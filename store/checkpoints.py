"""Per-mailbox IMAP position, so a restart resumes where the last commit left off."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store.db import transaction
from store.models import Checkpoint, utcnow


class Checkpoints:
    """The watcher's checkpoint store, backed by the ``checkpoints`` table."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def load(self, mailbox: str) -> tuple[int, int] | None:
        async with self.sessions() as session:
            row = await session.get(Checkpoint, mailbox)
            return None if row is None else (row.uidvalidity, row.last_uid)

    async def save(self, mailbox: str, uidvalidity: int, last_uid: int) -> None:
        async with transaction(self.sessions) as session:
            row = await session.get(Checkpoint, mailbox, with_for_update=True)
            if row is None:
                session.add(Checkpoint(mailbox=mailbox, uidvalidity=uidvalidity, last_uid=last_uid))
            elif row.uidvalidity != uidvalidity or last_uid > row.last_uid:
                row.uidvalidity = uidvalidity
                row.last_uid = last_uid
                row.updated_at = utcnow()
