"""``/healthz`` and ``/metrics``: what an operator's monitoring reads.

Live, per-process facts (IMAP watchers, the rules file) come from a
``HealthState`` the daemon passes in; everything countable comes from the
database, so any web replica reports the same numbers whichever process did
the work.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from starlette.requests import Request
from starlette.responses import Response

from ingest.latency import Histogram
from store import views
from store.models import utcnow

if TYPE_CHECKING:
    from servicedesk.web.context import WebContext


class WatcherReport(Protocol):
    """What ``ingest.imap_health.WatcherHealth`` offers; any object like it will do."""

    @property
    def mailbox(self) -> str: ...

    @property
    def healthy(self) -> bool: ...

    def as_dict(self) -> dict[str, object]: ...


class RulesReport(Protocol):
    """What ``classify.reload.RulesStatus`` offers."""

    @property
    def ok(self) -> bool: ...

    def as_dict(self) -> dict[str, object]: ...


def _no_watchers() -> Sequence[WatcherReport]:
    return ()


def _no_rules() -> RulesReport | None:
    return None


@dataclass
class HealthState:
    """Callables, so the endpoint always reads the current state, not a copy.

    ``watchers``: the health of each IMAP watcher this process runs (empty in
    a web-only process).  ``rules``: the live rules status, or None when this
    process does not load rules.
    """

    watchers: Callable[[], Sequence[WatcherReport]] = field(default=_no_watchers)
    rules: Callable[[], RulesReport | None] = field(default=_no_rules)
    # The ingest latency histogram of this process (None in a web-only process).
    latency: Callable[[], Histogram | None] = field(default=lambda: None)


def _context(request: Request) -> WebContext:
    from servicedesk.web.context import web_context

    return web_context(request)


async def healthz(request: Request) -> Response:
    """200 when the database answers and every watcher is healthy, else 503.

    A refused rules file is reported (``degraded``) but not a failure: the
    last good rules are still routing mail.
    """
    context = _context(request)
    report: dict[str, object] = {}
    failing = False
    try:
        async with context.runtime.sessions() as session:
            await views.db_ping(session)
            states = dict(
                (key[1], n) for key, n in await views.outbox_by_state(session) if key[0] == "mail"
            )
            oldest = await views.oldest_pending_outbox(session)
        report["database"] = {"ok": True}
        report["outbox"] = {
            "pending": states.get("pending", 0),
            "failed": states.get("failed", 0),
            "oldest_pending_seconds": (utcnow() - oldest).total_seconds() if oldest else 0.0,
        }
    except Exception as exc:  # any driver error means "database down" to a monitor
        failing = True
        report["database"] = {"ok": False, "error": type(exc).__name__}
    watchers = list(context.health.watchers())
    report["imap"] = [w.as_dict() for w in watchers]
    failing = failing or any(not w.healthy for w in watchers)
    rules = context.health.rules()
    report["rules"] = rules.as_dict() if rules is not None else None
    degraded = rules is not None and not rules.ok
    report["status"] = "fail" if failing else ("degraded" if degraded else "ok")
    return Response(
        json.dumps(report, default=str),
        status_code=503 if failing else 200,
        media_type="application/json",
    )


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class _Exposition:
    """Prometheus text format 0.0.4, written by hand: a few gauges need no library."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def metric(
        self, name: str, kind: str, help_text: str, samples: list[tuple[dict[str, str], float]]
    ) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            inner = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            self.lines.append(f"{name}{{{inner}}} {value:g}" if inner else f"{name} {value:g}")

    def histogram(self, name: str, help_text: str, histogram: Histogram) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} histogram")
        for le, count in histogram.cumulative():
            self.lines.append(f'{name}_bucket{{le="{le}"}} {count}')
        self.lines.append(f"{name}_sum {histogram.total:g}")
        self.lines.append(f"{name}_count {histogram.count}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


async def metrics(request: Request) -> Response:
    context = _context(request)
    out = _Exposition()
    try:
        async with context.runtime.sessions() as session:
            intake = await views.intake_by_action(session)
            tickets = await views.tickets_by_category(session)
            outbox = await views.outbox_by_state(session)
            feedback = await views.feedback_counts(session)
            oldest = await views.oldest_pending_outbox(session)
        up = 1.0
    except Exception:  # report the outage as a metric rather than a scrape error
        intake, tickets, outbox, feedback, oldest, up = [], [], [], [], None, 0.0
    out.metric("servicedesk_database_up", "gauge", "1 when the database answered.", [({}, up)])
    out.metric(
        "servicedesk_mails_ingested_total", "counter", "Mails received, by what became of them.",
        [({"action": k[0]}, n) for k, n in intake],
    )  # fmt: skip
    out.metric(
        "servicedesk_tickets", "gauge", "Tickets by category and status.",
        [({"category": k[0], "status": k[1]}, n) for k, n in tickets],
    )  # fmt: skip
    out.metric(
        "servicedesk_outbox_items", "gauge", "Outbox rows by kind and state (pending, sent, failed).",
        [({"kind": k[0], "state": k[1]}, n) for k, n in outbox],
    )  # fmt: skip
    age = (utcnow() - oldest).total_seconds() if oldest else 0.0
    out.metric(
        "servicedesk_outbox_oldest_pending_seconds", "gauge",
        "Age of the oldest unsent outbox row.", [({}, age)],
    )  # fmt: skip
    out.metric(
        "servicedesk_feedback", "gauge", "Requester feedback by answer.",
        [({"helpful": "yes" if k[0] in ("True", "1") else "no"}, n) for k, n in feedback],
    )  # fmt: skip
    watchers = list(context.health.watchers())
    out.metric(
        "servicedesk_imap_healthy", "gauge", "1 per healthy IMAP watcher in this process.",
        [({"mailbox": w.mailbox}, 1.0 if w.healthy else 0.0) for w in watchers],
    )  # fmt: skip
    rules = context.health.rules()
    if rules is not None:
        out.metric(
            "servicedesk_rules_ok", "gauge", "0 when the newest rules file was refused.",
            [({}, 1.0 if rules.ok else 0.0)],
        )  # fmt: skip
    histogram = context.health.latency()
    if histogram is not None:
        out.histogram(
            "servicedesk_ingest_seconds", "Time from raw bytes to an outcome, per mail (this process).",
            histogram,
        )  # fmt: skip
    return Response(out.text(), media_type="text/plain; version=0.0.4; charset=utf-8")
