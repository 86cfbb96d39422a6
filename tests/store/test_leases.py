"""Exactly one leader per mailbox; a standby takes over when the leader goes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from store.checkpoints import Checkpoints
from store.db import create_engine, session_factory
from store.leases import leadership
from store.migrate import upgrade


async def test_second_process_waits_until_leader_leaves(db_url: str, tmp_path: Path) -> None:
    first_engine, second_engine = create_engine(db_url), create_engine(db_url)
    stop = asyncio.Event()
    order: list[str] = []
    release = asyncio.Event()

    async def leader() -> None:
        async with leadership(first_engine, "inbox", tmp_path, stop, retry_seconds=0.05) as lease:
            assert lease is not None
            order.append("first")
            await release.wait()
        order.append("first-left")

    async def standby() -> None:
        await asyncio.sleep(0.1)
        async with leadership(second_engine, "inbox", tmp_path, stop, retry_seconds=0.05) as lease:
            assert lease is not None
            order.append("second")

    task_a, task_b = asyncio.create_task(leader()), asyncio.create_task(standby())
    await asyncio.sleep(0.4)
    assert order == ["first"]  # the standby is still waiting
    release.set()
    await asyncio.wait_for(asyncio.gather(task_a, task_b), 5)
    assert order == ["first", "first-left", "second"]
    await first_engine.dispose()
    await second_engine.dispose()


async def test_waiting_standby_gives_up_on_stop(db_url: str, tmp_path: Path) -> None:
    engine = create_engine(db_url)
    stop = asyncio.Event()
    async with leadership(engine, "inbox", tmp_path, stop, retry_seconds=0.05) as lease:
        assert lease is not None
        other = create_engine(db_url)

        async def standby() -> object:
            async with leadership(other, "inbox", tmp_path, stop, retry_seconds=0.05) as got:
                return got

        task = asyncio.create_task(standby())
        await asyncio.sleep(0.2)
        stop.set()
        assert await asyncio.wait_for(task, 5) is None
        await other.dispose()
    await engine.dispose()


async def test_checkpoints_move_forward_and_reset_on_uidvalidity(db_url: str) -> None:
    engine = create_engine(db_url)
    await upgrade(engine)
    points = Checkpoints(session_factory(engine))
    assert await points.load("main") is None
    await points.save("main", 100, 5)
    await points.save("main", 100, 3)  # never backwards
    assert await points.load("main") == (100, 5)
    await points.save("main", 200, 1)  # new UIDVALIDITY resets
    assert await points.load("main") == (200, 1)
    await engine.dispose()
