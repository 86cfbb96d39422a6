"""A mail waiting in a busy worker's pipe is never lost with that worker.

With one worker, the second mail is sent while the first is parsed; these
cases make the first one kill its worker in each way it can go.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

from ingest.budget import BudgetParser, BudgetSettings
from ingest.mail import InboundMail
from ingest.parse import ParseLimits, Unparseable
from ingest.parse_worker import ParseFunc
from tests.hostile import mails, workers


def _one_worker(func: ParseFunc, seconds: float) -> BudgetParser:
    return BudgetParser(ParseLimits(), BudgetSettings(seconds=seconds, workers=1), func=func)


async def test_mail_behind_an_over_budget_mail_is_parsed_on_a_fresh_worker() -> None:
    parser = _one_worker(workers.stuck, 0.5)
    try:
        spin, fine = await asyncio.wait_for(
            asyncio.gather(
                parser(mails.head("spin", "s") + b"\r\nx"), parser(mails.ordinary("behind"))
            ),
            10,
        )
        assert isinstance(spin, Unparseable) and "budget of 0.5 s" in spin.reason
        assert isinstance(fine, InboundMail) and fine.message_id == "behind@eksote.fi"
        assert parser.killed == 1
    finally:
        await parser.aclose()


async def test_mail_behind_a_crashing_mail_is_parsed_on_a_fresh_worker() -> None:
    parser = _one_worker(workers.crash, 5)
    try:
        died, fine = await asyncio.wait_for(
            asyncio.gather(
                parser(mails.head("crash", "c") + b"\r\nx"), parser(mails.ordinary("behind"))
            ),
            10,
        )
        assert isinstance(died, Unparseable) and "exit code 139" in died.reason
        assert isinstance(fine, InboundMail)
    finally:
        await parser.aclose()


async def test_giving_up_on_a_mail_does_not_cost_the_mail_behind_it() -> None:
    parser = _one_worker(workers.stuck, 30)
    try:
        spin = asyncio.ensure_future(parser(mails.head("spin", "s") + b"\r\nx"))
        fine = asyncio.ensure_future(parser(mails.ordinary("behind")))
        await asyncio.sleep(0.3)
        started = time.perf_counter()
        spin.cancel()
        result = await asyncio.wait_for(fine, 5)
        assert isinstance(result, InboundMail)
        assert time.perf_counter() - started < 3  # not the 30 s budget
        assert parser.killed == 1
    finally:
        await parser.aclose()


async def test_many_mails_on_two_workers_each_come_back_once_in_their_own_order() -> None:
    parser = BudgetParser(ParseLimits(), BudgetSettings(workers=2, max_jobs_per_worker=7))
    try:
        ids = [f"m{i}" for i in range(60)]
        results = await asyncio.wait_for(
            asyncio.gather(*(parser(mails.ordinary(i)) for i in ids)), 30
        )
        assert [r.message_id for r in results] == [f"{i}@eksote.fi" for i in ids]  # type: ignore[union-attr]
        assert parser.recycled >= 60 // 7 - 1  # worn workers were replaced on the way
    finally:
        await parser.aclose()


async def test_closed_parser_refuses_new_mail() -> None:
    parser = _one_worker(workers.stuck, 5)
    await parser(mails.ordinary("first"))
    await parser.aclose()
    assert parser.worker_pids() == []
    try:
        await parser(mails.ordinary("late"))
    except RuntimeError as exc:
        assert "closed" in str(exc)
    else:
        raise AssertionError("a closed parser took a mail")


async def test_worker_killed_while_idle_costs_the_next_mail_nothing() -> None:
    parser = _one_worker(workers.stuck, 5)
    try:
        assert isinstance(await parser(mails.ordinary("before")), InboundMail)
        (pid,) = parser.worker_pids()
        os.kill(pid, signal.SIGKILL)  # the OOM killer, an operator
        await asyncio.sleep(0.2)
        after = await asyncio.wait_for(parser(mails.ordinary("after")), 10)
        assert isinstance(after, InboundMail), after
        assert parser.worker_pids() and parser.worker_pids() != [pid]
    finally:
        await parser.aclose()


def _html_mail(mid: str, size: int) -> bytes:
    """A mail whose parsed answer (text, HTML and sanitised HTML) is several times its size."""
    paragraph = "<p>Tulostin ei tulosta, <b>kiitos</b> avusta.</p>\r\n"
    body = paragraph * (size // len(paragraph))
    return mails.head("Iso viesti", mid, "Content-Type: text/html; charset=utf-8\r\n\r\n") + (
        body.encode()
    )


async def test_mails_queued_in_a_busy_pipe_never_block_the_feeder() -> None:
    """Queued mails must fit the socket buffer together: a feeder blocked sending while its
    worker blocks sending a large answer would wait for ever."""
    parser = BudgetParser(ParseLimits(), BudgetSettings(seconds=20, workers=1))
    try:
        raws = [_html_mail(f"big{i}", 40_000) for i in range(24)]
        results = await asyncio.wait_for(asyncio.gather(*(parser(raw) for raw in raws)), 30)
        assert [r.message_id for r in results] == [f"big{i}@eksote.fi" for i in range(24)]  # type: ignore[union-attr]
        assert all(isinstance(r, InboundMail) and len(r.html) > 30_000 for r in results)
    finally:
        await parser.aclose()
