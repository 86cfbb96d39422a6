"""One leader per mailbox across processes: whoever holds the lock ingests it.

On PostgreSQL a session-level advisory lock is held on a dedicated
connection; if the process dies the server drops the connection and the lock
with it, so a standby takes over without any timeout to tune. SQLite is a
single-host store, so a file lock in the data folder plays the same role.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


def lock_id(name: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_lock``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class Lease:
    """Proof of leadership; ``lost`` is set when the holding connection fails."""

    def __init__(self) -> None:
        self.lost = asyncio.Event()


async def _try_pg(connection: AsyncConnection, key: int) -> bool:
    return bool(await connection.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}))


async def _watch_pg(connection: AsyncConnection, lease: Lease, interval: float) -> None:
    try:
        while True:
            await asyncio.sleep(interval)
            await connection.scalar(text("SELECT 1"))
    except asyncio.CancelledError:
        raise
    except Exception:
        lease.lost.set()


@asynccontextmanager
async def leadership(
    engine: AsyncEngine,
    name: str,
    data_dir: Path,
    stop: asyncio.Event,
    *,
    retry_seconds: float = 2.0,
) -> AsyncIterator[Lease | None]:
    """Wait until this process leads ``name`` (or ``stop`` is set: yields None)."""
    if engine.dialect.name == "postgresql":
        async with engine.connect() as connection:
            key = lock_id(f"mailbox:{name}")
            while not await _try_pg(connection, key):
                await connection.rollback()
                if await _wait(stop, retry_seconds):
                    yield None
                    return
            await connection.commit()
            lease = Lease()
            watcher = asyncio.create_task(_watch_pg(connection, lease, retry_seconds))
            try:
                yield lease
            finally:
                watcher.cancel()
                try:
                    await connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    await connection.commit()
                except Exception:
                    pass  # the connection is gone, and the lock with it
        return
    path = data_dir / "locks" / f"{hashlib.sha256(name.encode()).hexdigest()[:16]}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    handle: IO[bytes] = path.open("ab")
    try:
        while not _try_flock(handle):
            if await _wait(stop, retry_seconds):
                yield None
                return
        yield Lease()
    finally:
        handle.close()  # closing releases the flock


def _try_flock(handle: IO[bytes]) -> bool:
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep, waking early on stop; True when stop is set."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True
