"""The rate limiter and form nonces on their own, with a fake clock."""

from __future__ import annotations

from servicedesk.web.security import FormNonces, RateLimiter
from tests.web.conftest import Served


def test_bucket_allows_burst_then_refills_at_the_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=3, clock=lambda: now[0])
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("b")  # per client
    assert limiter.retry_after("a") >= 1
    now[0] += 1.0  # one token per second
    assert limiter.allow("a") and not limiter.allow("a")
    now[0] += 100
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]  # capped at burst


def test_bucket_memory_is_bounded() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=2, clock=lambda: now[0], max_clients=100)
    for i in range(1000):
        limiter.allow(f"10.0.{i // 256}.{i % 256}")
        now[0] += 0.001
    assert len(limiter._buckets) <= 100


def test_nonce_bound_to_token_purpose_and_age() -> None:
    nonces = FormNonces(b"key", max_age_seconds=3600)
    nonce = nonces.issue("tok", "feedback", now=1000)
    assert nonces.check(nonce, "tok", "feedback", now=1000 + 3599)
    assert not nonces.check(nonce, "tok", "feedback", now=1000 + 3601)
    assert not nonces.check(nonce, "other", "feedback", now=1000)
    assert not nonces.check(nonce, "tok", "comment", now=1000)
    assert not FormNonces(b"another key").check(nonce, "tok", "feedback", now=1000)
    for junk in ("", ".", "x.y", "²³.aa", "1000.", nonce + "0"):
        assert not nonces.check(junk, "tok", "feedback", now=1000)


async def test_responses_are_not_held_back_by_nagle(served: Served) -> None:
    """A listening socket without IPPROTO_TCP made every response wait ~40 ms (delayed ACK)."""
    import time

    timings = []
    for _ in range(5):
        start = time.perf_counter()
        response = await served.client.get("/static/style.css")
        timings.append(time.perf_counter() - start)
        assert response.status_code == 200
    assert min(timings) < 0.02, timings
