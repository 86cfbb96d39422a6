"""Schema upgrades are all or nothing: a start killed mid-upgrade must not brick the store."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import inspect
from sqlalchemy.engine import make_url

from store import migrate
from store.db import create_engine
from tests.conftest import PG_ADMIN_URL, _pg_admin


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all, as on a first start."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/first-start.db"
        return
    request.getfixturevalue("pg_url")  # fails (in CI) or skips like every PostgreSQL test
    name = f"sd_migrate_{secrets.token_hex(4)}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def test_an_upgrade_that_dies_midway_leaves_nothing_and_can_run_again(
    empty_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db_url = empty_db_url
    engine = create_engine(db_url)
    real = command.upgrade

    def dies_after_the_tables(config: Any, revision: str) -> None:
        real(config, revision)  # every table created, version stamped...
        raise RuntimeError("killed")  # ...and the process dies before the commit

    try:
        monkeypatch.setattr(command, "upgrade", dies_after_the_tables)
        with pytest.raises(RuntimeError, match="killed"):
            await migrate.upgrade(engine)
        assert await _tables(db_url) == set()
        monkeypatch.setattr(command, "upgrade", real)
        await migrate.upgrade(engine)  # the next start: a clean upgrade
        assert await migrate.current_revision(engine) is not None
        assert {"tickets", "intake", "outbox"} <= await _tables(db_url)
    finally:
        await engine.dispose()
