"""The real app on a loopback port (uvicorn), one per test, over the ``runtime`` fixture's database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from servicedesk.runtime import Runtime
from servicedesk.web import HealthState, WebServer, create_app
from store import agents
from store.db import transaction


@dataclass
class Served:
    runtime: Runtime
    base_url: str
    client: httpx.AsyncClient
    agent_token: str


async def serve(
    runtime: Runtime, health: HealthState | None = None, **limits: float
) -> AsyncIterator[Served]:
    app = create_app(runtime, health, **limits)  # type: ignore[arg-type]
    server = WebServer(app, "127.0.0.1", 0)
    port = await server.start()
    base = f"http://127.0.0.1:{port}"
    async with transaction(runtime.sessions) as session:
        token = await agents.add_agent(session, "anna")
    try:
        async with httpx.AsyncClient(base_url=base, timeout=20) as client:
            yield Served(runtime, base, client, token)
    finally:
        await server.stop()


@pytest.fixture
async def served(runtime: Runtime) -> AsyncIterator[Served]:
    """Rate limit high enough that ordinary tests never meet it."""
    async for item in serve(runtime, lookups_per_minute=6000, lookup_burst=1000):
        yield item
