"""Schema upgrades through Alembic, on the application's own async engine."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from servicedesk.paths import PROJECT_ROOT
from store.db import WRITER_OPTION

MIGRATIONS = PROJECT_ROOT / "store" / "migrations"
# Arbitrary constant: all daemons starting together take turns upgrading.
_PG_MIGRATION_LOCK = 7_301_455_001


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection, revision: str) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})"))
    command.upgrade(alembic_config(connection), revision)


def _current(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """All of an upgrade commits, or none of it.

    SQLite's Python driver runs each CREATE TABLE in its own implicit commit
    unless a transaction is open: a daemon killed during its first start
    used to leave half a schema and no version stamp, and every later start
    failed on "table already exists". The writer option opens the
    transaction first (``BEGIN IMMEDIATE``, see store.db), which also makes
    processes starting together on one SQLite file take turns.
    """
    async with engine.connect() as connection:
        writer = await connection.execution_options(**{WRITER_OPTION: True})
        async with writer.begin():
            await writer.run_sync(_upgrade, revision)


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(_current)
