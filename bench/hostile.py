"""Per hostile case: wall time and peak RSS of parsing in the budget pool.

Run: ``.venv/bin/python bench/hostile.py [--large-runs 100]``. A script, not a
test. Peak RSS is read per process from /proc (VmHWM of each fresh worker,
and of this process), so the figures are the cost of one mail each.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest.budget import BudgetParser, BudgetSettings
from ingest.parse import ParseLimits
from tests.hostile import mails

BUDGET_S = 20.0


def hwm(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def rss(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def large_mail(size: int, mid: str) -> bytes:
    return mails.attachment_mail("skannaus.pdf", bytes(range(256)) * (size // 256), mid)


async def one(raw: bytes) -> tuple[float, int, int, str]:
    """Fresh single-worker pool per case so the worker's VmHWM is this mail's alone."""
    parser = BudgetParser(ParseLimits(), BudgetSettings(seconds=BUDGET_S, workers=1))
    await parser(mails.ordinary("warm"))
    (pid,) = parser.worker_pids()
    idle = rss(pid)
    started = time.perf_counter()
    result = await parser(raw)
    elapsed = time.perf_counter() - started
    peak = hwm(pid) if parser.worker_pids() else 0
    await parser.aclose()
    what = getattr(result, "reason", "") or "parsed"
    return elapsed, idle, peak, what


async def main(large_runs: int) -> None:
    cases = [(c.name, c.build()) for c in mails.CASES]
    cases.append(("attachment-20MB", large_mail(20 * 1024 * 1024, "l20")))
    cases.append(("attachment-40MB", large_mail(40 * 1024 * 1024, "l40")))
    print(f"{'case':22} {'bytes':>10} {'seconds':>8} {'idle MB':>8} {'peak MB':>8} "
          f"{'(peak-idle)/size':>16}  result")  # fmt: skip
    base = None
    for name, raw in cases:
        elapsed, idle, peak, what = await one(raw)
        base = base or elapsed
        ratio = (peak - idle) / len(raw) if peak else float("nan")
        flag = "  OVER BUDGET" if elapsed > BUDGET_S else ""
        print(f"{name:22} {len(raw):>10} {elapsed:>8.3f} {idle / 2**20:>8.1f} {peak / 2**20:>8.1f} "
              f"{ratio:>16.2f}  {what[:50]}{flag}")  # fmt: skip
    print(f"\nordinary mail: {(base or 0.0) * 1000:.1f} ms")

    # A hundred large mails in a row through one pool: RSS must stay flat.
    raw = large_mail(20 * 1024 * 1024, "run")
    parser = BudgetParser(ParseLimits(), BudgetSettings(seconds=BUDGET_S, workers=2))
    samples: list[int] = []
    started = time.perf_counter()
    for i in range(large_runs):
        await parser(raw)
        pids = parser.worker_pids()
        samples.append(sum(rss(p) for p in pids) + rss())
        if i % 20 == 0:
            print(f"  run {i:3}: parent+workers RSS {samples[-1] / 2**20:.1f} MB")
    print(f"{large_runs} x {len(raw) / 2**20:.0f} MB in {time.perf_counter() - started:.1f} s; "
          f"RSS first {samples[0] / 2**20:.1f} MB, last {samples[-1] / 2**20:.1f} MB, "
          f"max {max(samples) / 2**20:.1f} MB; recycled {parser.recycled}")  # fmt: skip
    print(f"parent peak RSS {hwm() / 2**20:.1f} MB")
    await parser.aclose()


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--large-runs", type=int, default=100)
    asyncio.run(main(cli.parse_args().large_runs))
