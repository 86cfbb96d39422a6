"""IMAP ingest benchmark: throughput, IDLE latency and memory against a private Dovecot.

Prints figures and ratios measured in one run, so a noisy shared machine
shifts both sides of each ratio alike. Not a test: nothing here fails.

    .venv/bin/python bench/imap_ingest.py [--mails 2000] [--rounds 5] [--latency-mails 200] [--backlog 10000]

(a) daemon ``--once`` drain throughput on SQLite and PostgreSQL;
(b) baseline: aioimaplib fetch + mail-parser parse, nothing stored;
(b2) the same work as the daemon minus storing and acknowledging: fetch,
     servicedesk's own parse and routing, in one process;
(c) ratios a/b and a/b2, the median of each round's own ratio (a/b2
    above 1 means the daemon's second core pays for more than its storage
    and acknowledgement);
(d) with the daemon idling, APPEND-to-committed-ticket latency p50/p95/p99;
(e) peak RSS of ``servicedesk run --once`` draining a backlog.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import mailparser  # noqa: E402
import structlog  # noqa: E402

from classify.reload import RulesHolder  # noqa: E402
from ingest.boundary import fast_boundaries  # noqa: E402
from ingest.imap_session import ImapSession  # noqa: E402
from ingest.mail import InboundMail  # noqa: E402
from ingest.outcome import Outcome, SourceRef  # noqa: E402
from ingest.parse import ParseLimits, parse_mail  # noqa: E402
from servicedesk.daemon import Daemon  # noqa: E402
from servicedesk.runtime import build_router, open_runtime, settle_heap  # noqa: E402
from servicedesk.settings import ImapSettings, load_settings  # noqa: E402
from tests.servers.dovecot import DovecotServer  # noqa: E402
from tests.servers.mailbox import TestMailbox  # noqa: E402

PG = os.environ.get("SERVICEDESK_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")

SUBJECTS = [
    "Salasana vanhentunut", "Tulostin ei tulosta", "Kysymys palkasta", "Uusi verokortti",
    "Työtodistus", "Tilaus: kannettava tietokone", "Glömt lösenord", "Fråga om lönen",
    "Access to the shared folder", "New mobile phone and SIM",
]  # fmt: skip


def generated_mail(i: int) -> bytes:
    """A realistic small mail: a few paragraphs, sometimes HTML, sometimes an attachment."""
    rng = random.Random(i)
    subject = f"{rng.choice(SUBJECTS)} #{i}"
    text = "\n\n".join(
        " ".join(rng.choice(["hei", "kone", "ei", "toimi", "salasana", "tulostin", "palkka",
                             "kiitos", "please", "help", "lösenord", "skrivare"]) for _ in range(40))
        for _ in range(3)
    )  # fmt: skip
    boundary = f"b{i}"
    parts = [
        f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n",
        f"--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>{text}</p>\r\n",
    ]
    if i % 5 == 0:
        parts.append(
            f"--{boundary}\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
            f'Content-Disposition: attachment; filename="liite{i}.pdf"\r\n\r\n'
            + "JVBERi0xLjQK" * 400
            + "\r\n"
        )
    head = (
        f"From: User {i} <user{i % 50}@eksote.fi>\r\nTo: servicedesk@example.org\r\n"
        f"Subject: {subject}\r\nMessage-ID: <bench-{i}-{time.time_ns()}@example.org>\r\n"
        f"Date: Mon, 23 Nov 2026 08:00:00 +0200\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'
    )
    return (head + "".join(parts) + f"--{boundary}--\r\n").encode()


# The daemon's own default batch size, used by the baselines too.
BATCH = ImapSettings.model_fields["batch_size"].default


def env_for(mailbox: TestMailbox, db_url: str, data: Path) -> dict[str, str]:
    return mailbox.daemon_env(db_url, data, SERVICEDESK_IMAP__POLL_SECONDS="300",
                              SERVICEDESK_IMAP__BATCH_SIZE=str(BATCH))  # fmt: skip


async def fresh_pg() -> str:
    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(PG)
    name = f"sd_bench_{os.getpid()}_{random.randrange(10**6)}"
    conn = await asyncpg.connect(
        host=url.host, port=url.port or 5432, user=url.username, database=url.database
    )
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return url.set(database=name).render_as_string(hide_password=False)


async def drain_rate(mailbox: TestMailbox, db_url: str, data: Path, count: int) -> float:
    mailbox.append_many([generated_mail(i) for i in range(count)])
    settings = load_settings(None, environ=env_for(mailbox, db_url, data))
    async with open_runtime(settings) as runtime:
        daemon = Daemon(runtime, ("ingest",))
        with daemon_heap():
            started = time.perf_counter()
            handled = await daemon.drain_once()
            elapsed = time.perf_counter() - started
    assert handled == count, (handled, count)
    return count / elapsed


@contextlib.contextmanager
def daemon_heap() -> Iterator[None]:
    """The collector as `servicedesk run` sets it once started; the baselines,
    run in this same process, get the default back."""
    thresholds = gc.get_threshold()
    settle_heap()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def same_work() -> Callable[[bytes], object]:
    """Parse and route as a parse worker does, by the default rules."""
    settings = load_settings(None, environ={})
    router = build_router(settings, RulesHolder(settings.rules.path))()
    limits = ParseLimits()

    def handle(raw: bytes) -> object:
        with fast_boundaries():  # as in the parse workers; mail-parser's baseline runs without
            mail = parse_mail(raw, limits)
        return router.route(mail) if isinstance(mail, InboundMail) else mail

    return handle


async def baseline_rate(
    mailbox: TestMailbox,
    count: int,
    batch: int = BATCH,
    *,
    move: bool = False,
    handle: Callable[[bytes], object] = mailparser.parse_from_bytes,
) -> float:
    """Fetch and parse in one process; with ``move`` also move each batch away,
    as the daemon must (the server's share of acknowledging, nothing stored)."""
    mailbox.append_many([generated_mail(i) for i in range(count)])
    session = ImapSession(mailbox.settings())
    await session.open()
    if move:
        await session.ensure_folder("Processed")
    started = time.perf_counter()
    await session.select("INBOX")
    uids = await session.uid_search("ALL")
    parsed = 0
    for start in range(0, len(uids), batch):
        for _uid, raw in await session.fetch_bodies(uids[start : start + batch]):
            handle(raw)
            parsed += 1
        if move:
            await session.move(uids[start : start + batch], "Processed")
    elapsed = time.perf_counter() - started
    await session.logout()
    assert parsed == count
    return count / elapsed


async def idle_latency(
    mailbox: TestMailbox, db_url: str, data: Path, count: int, rate: float
) -> list[float]:
    settings = load_settings(None, environ=env_for(mailbox, db_url, data))
    committed: dict[str, float] = {}
    appended: dict[str, float] = {}
    async with open_runtime(settings) as runtime:
        with daemon_heap():
            process = runtime.pipeline.process

            async def timed(raw: bytes, source: SourceRef) -> Outcome:
                outcome = await process(raw, source)
                committed[source.key.rsplit(":", 1)[1]] = time.perf_counter()
                return outcome

            runtime.pipeline.process = timed  # type: ignore[method-assign]
            daemon = Daemon(runtime, ("ingest",))
            runner = asyncio.create_task(daemon.run())
            await asyncio.sleep(3)  # connected and idling
            for i in range(count):
                raw = generated_mail(100_000 + i)
                uid = await mailbox.aappend(raw)
                appended[str(uid)] = time.perf_counter()
                await asyncio.sleep(1 / rate)
            deadline = time.perf_counter() + 30
            while len(committed) < count and time.perf_counter() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            daemon.request_stop()
            await runner
    return sorted(committed[uid] - t for uid, t in appended.items() if uid in committed)


def backlog_rss(mailbox: TestMailbox, data: Path, count: int) -> tuple[float, float, int]:
    chunk = 500
    for start in range(0, count, chunk):
        mailbox.append_many(
            [generated_mail(200_000 + i) for i in range(start, min(count, start + chunk))]
        )
    env = {**os.environ, **env_for(mailbox, f"sqlite:///{data}/backlog.db", data)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "servicedesk", "run", "--once", "--only", "ingest"],
        env=env, capture_output=True, cwd=ROOT, check=True,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    handled = int(result.stdout.decode().split(":")[-1].strip(" }\n"))
    return max(peak_kb, before) / 1024, elapsed, handled


def percentile(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


async def main(args: argparse.Namespace) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    logging.getLogger("mailparser").setLevel(logging.ERROR)
    server = DovecotServer(tls=False)
    server.start()
    root = Path(tempfile.mkdtemp(prefix="sd-bench-"))
    try:
        n = args.mails
        rounds: dict[str, list[float]] = {
            "base": [], "moved": [], "same": [], "sqlite": [], "pg": []
        }  # fmt: skip
        handle = same_work()
        # Interleaved rounds, medians reported: a burst of noise on the shared
        # machine then hits one round of every figure, not one figure.
        for i in range(args.rounds):
            rounds["base"].append(await baseline_rate(TestMailbox(server), n))
            rounds["moved"].append(await baseline_rate(TestMailbox(server), n, move=True))
            rounds["same"].append(await baseline_rate(TestMailbox(server), n, handle=handle))
            sqlite_url = f"sqlite:///{root}/a{i}.db"
            rounds["sqlite"].append(
                await drain_rate(TestMailbox(server), sqlite_url, root / f"a{i}", n)
            )
            rounds["pg"].append(
                await drain_rate(TestMailbox(server), await fresh_pg(), root / f"b{i}", n)
            )
        base, moved, same, sqlite, pg = (
            statistics.median(rounds[k]) for k in ("base", "moved", "same", "sqlite", "pg")
        )
        spread = "  ".join(f"{k} {min(v):.0f}-{max(v):.0f}" for k, v in rounds.items())
        print(f"    medians of {args.rounds} interleaved rounds of {n} mails; ranges: {spread}")
        # Each round's own ratio: its figures were measured seconds apart, so a
        # slow spell of the shared machine shifts both sides of it alike.
        paired = {
            (a, b): sorted(x / y for x, y in zip(rounds[a], rounds[b], strict=True))
            for a in ("sqlite", "pg") for b in ("base", "moved", "same")
        }  # fmt: skip

        def ratio(a: str, b: str) -> str:
            values = paired[(a, b)]
            return f"{statistics.median(values):.2f} ({values[0]:.2f}-{values[-1]:.2f})"

        print(f"(b) baseline fetch+parse (nothing stored)  {base:8.1f} mails/s")
        print(
            f"    baseline fetch+parse+UID MOVE           {moved:8.1f} mails/s  (the server's share of acknowledging)"
        )
        print(
            f"(b2) fetch+servicedesk parse+route, 1 process {same:5.1f} mails/s  (the daemon's work but storing)"
        )
        print(f"(a) daemon --once, SQLite                  {sqlite:8.1f} mails/s")
        print(f"(a) daemon --once, PostgreSQL              {pg:8.1f} mails/s")
        print("(c) ratios, median of the rounds' own ratios (range):")
        print(
            f"    a/b   SQLite {ratio('sqlite', 'base')}   PostgreSQL {ratio('pg', 'base')}   (target >= 0.7)"
        )
        print(
            f"    a/(b+MOVE)  SQLite {ratio('sqlite', 'moved')}   PostgreSQL {ratio('pg', 'moved')}"
        )
        print(f"    a/b2  SQLite {ratio('sqlite', 'same')}   PostgreSQL {ratio('pg', 'same')}")
        lat = await idle_latency(
            TestMailbox(server), f"sqlite:///{root}/c.db", root / "c", args.latency_mails, args.rate
        )
        print(
            f"(d) IDLE latency APPEND->commit over {len(lat)}/{args.latency_mails} mails at {args.rate:g}/s: "
            f"p50 {percentile(lat, 50) * 1000:.0f} ms  p95 {percentile(lat, 95) * 1000:.0f} ms  "
            f"p99 {percentile(lat, 99) * 1000:.0f} ms  max {lat[-1] * 1000:.0f} ms  (target p99 < 1000 ms)"
        )
        if args.backlog:
            rss, seconds, handled = backlog_rss(TestMailbox(server), root / "d", args.backlog)
            print(
                f"(e) backlog of {args.backlog}: peak RSS {rss:.0f} MB (largest process), "
                f"{handled} handled in {seconds:.0f} s  (target < 250 MB)"
            )
        print(
            f"    mean mail size {statistics.mean(len(generated_mail(i)) for i in range(50)) / 1024:.1f} KiB"
        )
    finally:
        server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved throughput rounds")
    parser.add_argument("--latency-mails", type=int, default=200)
    parser.add_argument("--rate", type=float, default=10.0, help="arrivals per second for (d)")
    parser.add_argument("--backlog", type=int, default=10000)
    asyncio.run(main(parser.parse_args()))
