"""Schemathesis against the running API: generated requests from the OpenAPI document.

Every documented operation is called with schema-valid data (and the
bearer token); the default checks require no 5xx, documented status codes,
content types and response bodies that match the schema.  "Valid data must
get a 2xx" is left out: a schema-valid PATCH can still be refused with 422
(``category: it`` with ``subcategory: hr.tax``), which OpenAPI cannot express.  The server runs
in its own thread and event loop because schemathesis calls it with
blocking ``requests``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from schemathesis.checks import positive_data_acceptance
from schemathesis.core.result import Ok

from servicedesk.runtime import open_runtime
from servicedesk.settings import Settings
from servicedesk.web import WebServer, create_app
from store import agents
from store.db import transaction
from tests.web.support import ingest, mail


@pytest.fixture
def live_api(db_url: str, make_settings: Callable[..., Settings]) -> Iterator[dict[str, Any]]:
    info: dict[str, Any] = {}
    ready = threading.Event()

    async def main() -> None:
        try:
            async with open_runtime(make_settings(db_url)) as runtime:
                await ingest(runtime, mail())
                async with transaction(runtime.sessions) as session:
                    info["token"] = await agents.add_agent(session, "fuzz")
                app = create_app(runtime, lookups_per_minute=10**6, lookup_burst=10**6)
                server = WebServer(app, "127.0.0.1", 0)
                info["port"] = await server.start()
                info["loop"] = asyncio.get_running_loop()
                info["stop"] = stop = asyncio.Event()
                ready.set()
                await stop.wait()
                await server.stop()
        except BaseException as exc:
            info["error"] = exc
            ready.set()
            raise

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    assert ready.wait(60), "server did not start"
    if "error" in info:
        raise info["error"]
    yield info
    info["loop"].call_soon_threadsafe(info["stop"].set)
    thread.join(30)


def test_api_matches_its_openapi_schema(live_api: dict[str, Any]) -> None:
    base = f"http://127.0.0.1:{live_api['port']}/api/v1"
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    headers = {"Authorization": f"Bearer {live_api['token']}"}
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operations.append(result.ok())
    assert len(operations) == 5
    for operation in operations:

        @hypothesis.settings(
            max_examples=60,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        )
        @hypothesis.given(case=operation.as_strategy())
        def check(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(
                base_url=base, headers=headers, excluded_checks=[positive_data_acceptance]
            )

        check()
