"""``/healthz`` and ``/metrics`` read the live state passed in and count from the database."""

from __future__ import annotations

from dataclasses import dataclass

from ingest.imap_health import WatcherHealth
from ingest.outcome import SourceRef
from servicedesk.runtime import Runtime
from servicedesk.web import HealthState
from tests.web.conftest import serve
from tests.web.support import ingest, mail


@dataclass
class Rules:
    ok: bool

    def as_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "problems": [] if self.ok else ["rules.yaml:3: bad"]}


async def test_healthz_and_metrics(runtime: Runtime) -> None:
    watcher = WatcherHealth("main", unhealthy_after=2)
    watcher.succeeded()
    rules = Rules(ok=True)
    state = HealthState(watchers=lambda: [watcher], rules=lambda: rules)
    await ingest(runtime, mail())
    auto = mail(message_id="auto@eksote.fi", headers={"Auto-Submitted": "auto-replied"})
    await runtime.pipeline.process(auto, SourceRef("file", "auto"))  # ignored, but counted
    async for served in serve(runtime, state):
        health = await served.client.get("/healthz")
        assert health.status_code == 200
        body = health.json()
        assert body["status"] == "ok" and body["database"] == {"ok": True}
        assert body["outbox"]["pending"] == 1 and body["imap"][0]["mailbox"] == "main"

        rules.ok = False
        degraded = await served.client.get("/healthz")
        assert degraded.status_code == 200 and degraded.json()["status"] == "degraded"
        watcher.failed("connection refused")
        watcher.failed("connection refused")
        failing = await served.client.get("/healthz")
        assert failing.status_code == 503 and failing.json()["status"] == "fail"

        metrics = await served.client.get("/metrics")
        assert metrics.status_code == 200
        assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
        lines = set(metrics.text.splitlines())
        assert 'servicedesk_mails_ingested_total{action="created"} 1' in lines
        assert 'servicedesk_mails_ingested_total{action="ignored"} 1' in lines
        assert 'servicedesk_tickets{category="it",status="new"} 1' in lines
        assert 'servicedesk_outbox_items{kind="mail",state="pending"} 1' in lines
        assert 'servicedesk_imap_healthy{mailbox="main"} 0' in lines
        assert "servicedesk_rules_ok 0" in lines
        assert "servicedesk_database_up 1" in lines
        assert "# TYPE servicedesk_mails_ingested_total counter" in lines
