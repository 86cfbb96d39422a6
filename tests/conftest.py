"""Shared fixtures: a database per backend (SQLite and the real PostgreSQL), settings, runtime.

Every store-touching test takes ``db_url`` and so runs twice, once per backend.
PostgreSQL gets one private database per test session (created from the
``test`` database CI provides) and is truncated between tests.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from sqlalchemy import text
from sqlalchemy.engine import make_url

from servicedesk.runtime import Runtime, open_runtime
from servicedesk.settings import Settings, load_settings
from store.db import create_engine
from store.migrate import upgrade
from store.models import Base
from tests.servers.fixtures import dovecot, imap_mailbox, make_proxy, smtp_sink

__all__ = ["dovecot", "imap_mailbox", "make_proxy", "smtp_sink"]

PG_ADMIN_URL = os.environ.get("SERVICEDESK_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
IN_CI = os.environ.get("CI", "").lower() == "true"


def corpus_files() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name != "README.md")


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """Commands run in-process configure structlog; never let that leak into the next test."""
    yield
    structlog.reset_defaults()


@pytest.fixture(scope="session")
def corpus() -> list[Path]:
    files = corpus_files()
    if not files:
        if IN_CI:
            pytest.fail(f"corpus missing at {CORPUS} (required when CI=true)")
        pytest.skip(f"corpus not found at {CORPUS}")
    return files


async def _pg_admin(sql: str) -> None:
    import asyncpg

    url = make_url(PG_ADMIN_URL)
    conn = await asyncpg.connect(
        host=url.host, port=url.port or 5432, user=url.username, database=url.database
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A private PostgreSQL database for this test session, migrated once."""
    name = f"sd_test_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except OSError as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}")
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)

    async def migrate() -> None:
        engine = create_engine(url)
        await upgrade(engine)
        await engine.dispose()

    asyncio.run(migrate())
    yield url
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _truncate(url: str) -> None:
    engine = create_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    await engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on both backends."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/servicedesk.db"
    url: str = request.getfixturevalue("pg_url")
    asyncio.run(_truncate(url))
    return url


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings on a temp data folder; keyword sections override, e.g. smtp={"host": …}."""

    def build(db_url: str | None = None, **sections: dict[str, Any]) -> Settings:
        environ = {
            "SERVICEDESK_DATA__DIR": str(tmp_path / "data"),
            "SERVICEDESK_DATABASE__URL": db_url or f"sqlite:///{tmp_path}/servicedesk.db",
            "SERVICEDESK_WEB__SECRET_KEY": "test-secret-key",
        }
        for section, values in sections.items():
            for key, value in values.items():
                environ[f"SERVICEDESK_{section.upper()}__{key.upper()}"] = str(value)
        return load_settings(None, environ=environ)

    return build


@pytest.fixture
async def runtime(db_url: str, make_settings: Callable[..., Settings]) -> AsyncIterator[Runtime]:
    async with open_runtime(make_settings(db_url)) as rt:
        yield rt
