"""``servicedesk demo``: the whole intake on bundled sample mail, with nothing configured.

It is the first thing a new operator runs, so it must work on a fresh
checkout, finish in seconds, and be safe to run again (the second run
reports every sample as a duplicate and shows the same tickets).
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from ingest.outcome import SourceRef
from servicedesk.paths import SAMPLES_DIR
from servicedesk.runtime import Runtime, open_runtime
from servicedesk.settings import Settings
from store.models import Ticket


async def _ingest_samples(runtime: Runtime) -> Counter[str]:
    actions: Counter[str] = Counter()
    for path in sorted(SAMPLES_DIR.glob("*.eml")):
        outcome = await runtime.pipeline.process(path.read_bytes(), SourceRef("file", str(path)))
        actions[outcome.action.value] += 1
        ticket = outcome.ticket or "-"
        print(f"  {path.name:<24} {outcome.action.value:<12} {ticket:<10} {outcome.reason[:60]}")
    return actions


async def _send_replies(runtime: Runtime) -> int:
    """Drain the outbox into the local folder (or SMTP, if one is configured)."""
    return await runtime.outbox.drain_once()


def _table(tickets: list[Ticket], runtime: Runtime) -> str:
    header = (
        f"  {'ticket':<10} {'category':<22} {'organisation':<20} {'lang':<4} {'prio':<7} subject"
    )
    rows = [header, "  " + "-" * (len(header) + 10)]
    for t in tickets:
        number = runtime.numbering.format(t.id)
        rows.append(
            f"  {number:<10} {t.subcategory or t.category:<22} {t.organisation:<20} "
            f"{t.language:<4} {t.priority:<7} {t.subject[:50]}"
        )
    return "\n".join(rows)


async def run_demo(settings: Settings) -> int:
    print(f"servicedesk demo: database {settings.database.url}, data folder {settings.data_dir}/")
    async with open_runtime(settings) as runtime:
        print("\nIngesting the bundled sample mails:")
        actions = await _ingest_samples(runtime)
        summary = ", ".join(f"{count} {action}" for action, count in sorted(actions.items()))
        print(f"\n  {summary}")
        sent = await _send_replies(runtime)
        async with runtime.sessions() as session:
            tickets = list((await session.scalars(select(Ticket).order_by(Ticket.id))).all())
        print(f"\nTickets in the store ({len(tickets)}):")
        print(_table(tickets, runtime))
    where = settings.smtp.host or f"{settings.data_dir}/sent/"
    print()
    print(f"Replies: {sent} sent now; outgoing mail is in {where}")
    print(
        f"Status pages: run `servicedesk run` and open the tracking link of a reply "
        f"({settings.web.base_url}/t/<token>)."
    )
    return 0
