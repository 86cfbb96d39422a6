"""Engine and session factory from a plain database URL.

Operators write ``sqlite:///…`` or ``postgresql://…``; the async driver is
chosen here so the config stays the same whatever driver is installed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

from servicedesk.exceptions import ServiceDeskError

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


class DatabaseURLError(ServiceDeskError):
    """The database URL names a backend we do not support."""


def async_url(url: str) -> URL:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in _ASYNC_DRIVERS:
        raise DatabaseURLError(
            f"database.url: unsupported backend {backend!r} (sqlite, postgresql)"
        )
    if "+" not in parsed.drivername:
        parsed = parsed.set(drivername=_ASYNC_DRIVERS[backend])
    return parsed


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets the web side read while intake writes; FKs are off by default."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    """``BEGIN IMMEDIATE`` for transactions that read, then write what they
    read (the intake writer, an agent's change): it takes SQLite's one write
    lock (waiting its turn) before the first read, so what is read cannot go
    stale under it and the ids it reserves (store.ids) are its own. Other
    transactions keep the driver's default: reads outside a transaction, a
    deferred BEGIN just before the first write."""
    if connection.get_execution_options().get(WRITER_OPTION, False):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


WRITER_OPTION = "servicedesk_writer"


def create_engine(url: str, *, echo: bool = False, pool_size: int = 5) -> AsyncEngine:
    parsed = async_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # Pooled: opening a SQLite connection (a thread in aiosqlite, plus the
        # pragmas) costs more than most of our statements.
        engine = create_async_engine(parsed, echo=echo, pool_size=pool_size, max_overflow=pool_size)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    return create_async_engine(
        parsed, echo=echo, pool_size=pool_size, pool_pre_ping=True, max_overflow=pool_size
    )


def session_factory(
    engine: AsyncEngine, sync_session_class: type[Session] = Session
) -> async_sessionmaker[AsyncSession]:
    """``sync_session_class`` carries per-runtime flush hooks (webhooks) without globals."""
    return async_sessionmaker(engine, expire_on_commit=False, sync_session_class=sync_session_class)


@asynccontextmanager
async def transaction(
    sessions: async_sessionmaker[AsyncSession], *, writer: bool = False
) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit on success, roll back on any error.

    ``writer`` takes the database's write lock at once on SQLite (see
    ``_sqlite_begin``); on PostgreSQL rows are locked as they are written,
    or read ``FOR UPDATE`` (``views.ticket_by_number(..., for_update=True)``).
    Without it, two changes of one ticket read the same old state and both
    act on it: two "resolved" mails for one resolution.
    """
    async with sessions() as session, session.begin():
        if writer:
            await session.connection(execution_options={WRITER_OPTION: True})
        yield session
