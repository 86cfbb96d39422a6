"""Delivery guarantees against a real SMTP server: retries, outages, permanent errors, crashes."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select

from notify.transport import FolderTransport, SmtpTransport
from notify.worker import OutboxWorker, backoff
from servicedesk.runtime import open_runtime
from store.models import Outbox, utcnow
from tests.notify.conftest import Desk, make_mail, route_by_hand
from tests.servers.ports import LOOPBACK, free_port

pytestmark = pytest.mark.smtp


async def rows(desk: Desk) -> list[Outbox]:
    async with desk.runtime.sessions() as session:
        return list((await session.scalars(select(Outbox).order_by(Outbox.id))).all())


async def ingest_many(desk: Desk, n: int) -> None:
    for i in range(n):
        await desk.ingest(
            make_mail(
                sender=f"user{i}@eksote.fi", message_id=f"m{i}@eksote.fi", subject=f"Asia {i}"
            )
        )


def message_ids(desk: Desk) -> list[str]:
    return [str(m["Message-ID"]) for m in desk.received()]


async def test_smtp_down_then_up_delivers_every_mail_exactly_once(desk: Desk) -> None:
    await ingest_many(desk, 5)
    desk.sink.stop()
    before = utcnow()
    assert await desk.worker.drain_once() == 0
    pending = await rows(desk)
    assert {r.state for r in pending} == {"pending"}
    assert all(r.attempts == 1 and r.last_error for r in pending)
    assert all(r.due_at > before for r in pending)  # backed off, not hammering
    desk.sink.start()
    await asyncio.sleep(0.2)  # backoff of the test settings is 0.05 s (+ jitter)
    assert await desk.worker.drain_once() == 5
    assert await desk.worker.drain_once() == 0
    ids = message_ids(desk)
    assert len(ids) == 5 and len(set(ids)) == 5
    assert sorted(m.rcpt_tos[0] for m in desk.sink.messages) == [
        f"user{i}@eksote.fi" for i in range(5)
    ]
    done = await rows(desk)
    assert {(r.state, r.attempts) for r in done} == {("sent", 2)}
    assert [f"<{r.message_id}>" for r in done] == ids


async def test_temporary_4xx_is_retried(desk: Desk) -> None:
    await ingest_many(desk, 2)
    desk.sink.fail_next = 1
    assert await desk.worker.drain_once() == 1
    [first, second] = await rows(desk)
    assert (first.state, second.state) == ("pending", "sent")
    assert "451" in first.last_error
    await asyncio.sleep(0.2)
    assert await desk.worker.drain_once() == 1
    assert len(set(message_ids(desk))) == 2


async def test_gives_up_after_max_attempts(desk: Desk) -> None:
    await ingest_many(desk, 1)
    desk.sink.stop()
    for _ in range(3):  # max_attempts = 3 in the test settings
        await desk.worker.drain_once()
        await asyncio.sleep(0.5)
    [row] = await rows(desk)
    assert (row.state, row.attempts) == ("failed", 3)
    assert row.last_error.startswith("gave up after 3 attempts")
    desk.sink.start()
    assert await desk.worker.drain_once() == 0


class _Refusing:
    """An SMTP server that knows no mailbox at all: 550 for every recipient."""

    def __init__(self) -> None:
        self.rcpt_calls = 0

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        self.rcpt_calls += 1
        return "550 5.1.1 no such user"


async def test_permanent_5xx_fails_at_once_without_retry(desk: Desk) -> None:
    handler = _Refusing()
    port = free_port()
    controller = Controller(handler, hostname=LOOPBACK, port=port)
    controller.start()
    try:
        settings = desk.runtime.settings.model_copy(
            update={"smtp": desk.runtime.settings.smtp.model_copy(update={"port": port})}
        )
        worker = OutboxWorker(
            desk.runtime.sessions, settings, desk.runtime.secret_key, SmtpTransport(settings.smtp)
        )
        await ingest_many(desk, 1)
        assert await worker.drain_once() == 0
        await asyncio.sleep(0.2)
        assert await worker.drain_once() == 0
    finally:
        controller.stop()
    [row] = await rows(desk)
    assert (row.state, row.attempts) == ("failed", 1)
    assert "550" in row.last_error and row.last_error.startswith("permanent")
    assert handler.rcpt_calls == 1


class _DiesAfterSending:
    """Sends for real, then "crashes" before the worker can record it."""

    def __init__(self, inner: SmtpTransport) -> None:
        self.inner = inner

    async def send(
        self, message: EmailMessage, *, outbox_id: int, sender: str, recipients: list[str]
    ) -> None:
        await self.inner.send(message, outbox_id=outbox_id, sender=sender, recipients=recipients)
        raise SystemExit("killed between SMTP accept and commit")


async def test_crash_after_accept_resends_with_the_same_message_id(desk: Desk) -> None:
    """The documented at-least-once gap: the duplicate is recognisable (same Message-ID)."""
    await ingest_many(desk, 1)
    settings = desk.runtime.settings
    dying = OutboxWorker(
        desk.runtime.sessions, settings, desk.runtime.secret_key,
        _DiesAfterSending(SmtpTransport(settings.smtp)),
    )  # fmt: skip
    with pytest.raises(SystemExit):
        await dying.drain_once()
    [row] = await rows(desk)
    assert row.state == "sending" and row.message_id
    # Before the lease expires nobody else takes the row...
    assert await desk.worker.drain_once() == 0
    # ...after it, the next worker sends it again, with the same id.
    later = OutboxWorker(
        desk.runtime.sessions, settings, desk.runtime.secret_key,
        clock=lambda: utcnow() + dying.lease + timedelta(seconds=1),
    )  # fmt: skip
    assert await later.drain_once() == 1
    ids = message_ids(desk)
    assert len(ids) == 2 and ids[0] == ids[1] == f"<{row.message_id}>"
    [row] = await rows(desk)
    assert (row.state, row.attempts) == ("sent", 2)


async def test_concurrent_workers_send_each_mail_once(desk: Desk) -> None:
    await ingest_many(desk, 12)
    runtime = desk.runtime
    workers = [
        OutboxWorker(runtime.sessions, runtime.settings, runtime.secret_key, batch_size=2)
        for _ in range(3)
    ]
    sent = await asyncio.gather(*(w.drain_once() for w in workers))
    assert sum(sent) == 12
    ids = Counter(message_ids(desk))
    assert len(ids) == 12 and set(ids.values()) == {1}


async def test_run_loop_wakes_and_stops(desk: Desk) -> None:
    worker = OutboxWorker(
        desk.runtime.sessions, desk.runtime.settings, desk.runtime.secret_key, poll_seconds=30
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await asyncio.sleep(0.1)
    await ingest_many(desk, 1)
    worker.wake()
    for _ in range(100):
        if desk.sink.messages:
            break
        await asyncio.sleep(0.05)
    assert len(desk.sink.messages) == 1
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_without_smtp_host_mail_goes_to_the_sent_folder(
    db_url: str, make_settings: object, tmp_path: Path
) -> None:
    settings = make_settings(db_url)  # type: ignore[operator]
    async with open_runtime(settings) as runtime:
        route_by_hand(runtime)
        await runtime.pipeline.process(
            make_mail(), __import__("ingest.outcome").outcome.SourceRef("file", "x")
        )
        worker = OutboxWorker(runtime.sessions, settings, runtime.secret_key)
        assert isinstance(worker.transport, FolderTransport)
        assert await worker.drain_once() == 1
    files = sorted((settings.data_dir / "sent").iterdir())
    assert [f.name for f in files] == ["1.eml"]
    assert b"[SD-000001]" in files[0].read_bytes()


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    import random

    rng = random.Random(1)
    delays = [backoff(30, n, rng).total_seconds() for n in range(1, 6)]
    for n, delay in enumerate(delays, start=1):
        base = 30 * 2 ** (n - 1)
        assert base <= delay <= base * 1.5
    assert backoff(30, 40, rng) <= timedelta(hours=9)
