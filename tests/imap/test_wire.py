"""Unit tests for the pure IMAP helpers: no server needed."""

from __future__ import annotations

import random

import pytest

from ingest.imap_health import RetryPolicy, WatcherHealth
from ingest.imap_wire import (
    check_keyword,
    encode_mailbox,
    parse_bodies,
    parse_search,
    parse_sizes,
    parse_uidvalidity,
    size_batches,
    uid_set,
)


def test_uid_set_compresses_runs() -> None:
    assert uid_set([7, 1, 2, 3, 9, 10, 3]) == "1:3,7,9:10"
    assert uid_set([5]) == "5"
    with pytest.raises(ValueError):
        uid_set([])


@pytest.mark.parametrize(
    ("name", "wire"),
    [
        ("INBOX", '"INBOX"'),
        ("Käsitelty", '"K&AOQ-sitelty"'),
        ("Karantän & co", '"Karant&AOQ-n &- co"'),
        ('a"b\\c', '"a\\"b\\\\c"'),
        ("日本語", '"&ZeVnLIqe-"'),
    ],
)
def test_encode_mailbox_is_quoted_modified_utf7(name: str, wire: str) -> None:
    assert encode_mailbox(name) == wire


def test_keyword_must_be_an_atom() -> None:
    assert check_keyword("ServiceDeskDone") == "ServiceDeskDone"
    for bad in ("", "two words", "\\Seen", "x(y", 'q"'):
        with pytest.raises(ValueError):
            check_keyword(bad)


def test_parse_select_and_search() -> None:
    select = [b"FLAGS (\\Seen)", b"OK [UIDVALIDITY 1795927916] UIDs valid", b"Select completed"]
    assert parse_uidvalidity(select) == 1795927916
    assert parse_uidvalidity([b"Select completed"]) == 0
    # The completion line has timing figures in it; they are not UIDs.
    assert parse_search([b"4 2 9", b"Search completed (0.001 + 0.000 secs)."]) == [2, 4, 9]
    assert parse_search([b"", b"Search completed (0.001 secs)."]) == []


def test_parse_fetch_bodies_uid_before_or_after_literal() -> None:
    lines: list[bytes | bytearray] = [
        b"1 FETCH (UID 5 BODY[] {3}",
        bytearray(b"abc"),
        b")",
        b"2 FETCH (FLAGS (\\Seen))",  # unsolicited, no literal
        b"3 FETCH (BODY[] {2}",
        bytearray(b"xy"),
        b" UID 8)",
        b"Fetch completed (0.001 secs).",
    ]
    assert parse_bodies(lines) == [(5, b"abc"), (8, b"xy")]
    sizes = [b"1 FETCH (UID 5 RFC822.SIZE 300)", b"2 FETCH (RFC822.SIZE 20 UID 6)", b"done"]
    assert parse_sizes(sizes) == {5: 300, 6: 20}


def test_size_batches_bound_count_and_bytes() -> None:
    uids = [1, 2, 3, 4, 5, 6]
    sizes = {1: 10, 2: 10, 3: 100, 4: 10, 5: 10, 6: 10}
    assert list(size_batches(uids, sizes, max_count=3, max_bytes=1000)) == [[1, 2, 3], [4, 5, 6]]
    # Mail 3 is larger than the budget: it travels alone; expunged UIDs (no size) drop out.
    del sizes[5]
    assert list(size_batches(uids, sizes, max_count=10, max_bytes=50)) == [[1, 2], [3], [4, 6]]


def test_retry_policy_grows_caps_and_is_slow_for_auth() -> None:
    policy = RetryPolicy(jitter=0.0)
    assert [policy.delay(n) for n in (1, 2, 3, 7, 20)] == [1.0, 2.0, 4.0, 60.0, 60.0]
    assert policy.delay(1, auth=True) == 30.0
    assert policy.delay(10, auth=True) == 600.0
    jittered = RetryPolicy(jitter=0.25)
    rng = random.Random(1)
    delays = [jittered.delay(3, rng=rng) for _ in range(200)]
    assert 3.0 <= min(delays) < max(delays) <= 5.0


def test_health_turns_unhealthy_after_n_failures() -> None:
    health = WatcherHealth("main", unhealthy_after=2)
    health.failed("boom")
    assert health.healthy
    health.failed("boom")
    assert not health.healthy and health.as_dict()["last_error"] == "boom"
    health.succeeded()
    assert health.healthy and health.connected and health.last_success is not None
