"""LinearFetch reads every FETCH response exactly as aioimaplib's own command does."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import aioimaplib
import pytest

from ingest.imap_fetch import LinearFetch


def _protocol() -> Any:
    protocol = aioimaplib.IMAP4ClientProtocol(asyncio.get_running_loop(), None)
    protocol.state = "SELECTED"

    class Transport:
        def write(self, data: bytes) -> None:
            pass

    protocol.transport = Transport()
    return protocol


def _response() -> bytes:
    """Bodies with parentheses, literals that look like FETCH lines, sizes, flags, a bad line."""
    parts = []
    for i in range(1, 30):
        body = (b"Subject: (x) * 9 FETCH (\r\n\r\n((( unbalanced" + b")" * (i % 4)) * i
        parts.append(b"* %d FETCH (UID %d FLAGS (\\Seen) BODY[] {%d}\r\n" % (i, 100 + i, len(body)))
        parts.append(body + b")\r\n")
        close = b"" if i == 7 else b")"  # one malformed line: the next FETCH line resets
        parts.append(b"* %d FETCH (UID %d RFC822.SIZE %d%s\r\n" % (i, 100 + i, len(body), close))
    return b"".join(parts) + b"A1 OK Fetch completed.\r\n"


async def _feed(command_class: Any, data: bytes, cuts: list[int]) -> Any:
    protocol = _protocol()
    command = command_class("A1", "1:*", "(UID BODY[])", prefix="UID", loop=protocol.loop)
    protocol.pending_async_commands["FETCH"] = command
    start = 0
    for cut in [*cuts, len(data)]:
        protocol.data_received(data[start:cut])
        start = cut
    return command


@pytest.mark.parametrize("seed", range(12))
async def test_same_lines_as_aioimaplib_however_the_bytes_are_split(seed: int) -> None:
    data = _response()
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, 5 + seed * 40)))
    theirs = await _feed(aioimaplib.FetchCommand, data, cuts)
    ours = await _feed(LinearFetch, data, cuts)
    assert theirs.response.result == "OK"
    assert ours.response.result == theirs.response.result
    assert ours.response.lines == theirs.response.lines


async def test_a_server_that_goes_quiet_times_the_fetch_out() -> None:
    protocol = _protocol()
    command = LinearFetch("A1", "1:*", "(UID)", prefix="UID", loop=protocol.loop, timeout=0.3)
    protocol.pending_async_commands["FETCH"] = command
    started = protocol.loop.time()
    with pytest.raises(aioimaplib.CommandTimeout):
        await asyncio.wait_for(command.wait(), 5)
    assert 0.25 <= protocol.loop.time() - started < 2


async def test_a_slow_but_steady_server_does_not_time_out() -> None:
    protocol = _protocol()
    command = LinearFetch("A1", "1:*", "(UID)", prefix="UID", loop=protocol.loop, timeout=0.3)
    protocol.pending_async_commands["FETCH"] = command
    for i in range(1, 9):  # 1.2 s in all, never 0.3 s without data
        protocol.data_received(b"* %d FETCH (UID %d)\r\n" % (i, i))
        await asyncio.sleep(0.15)
    protocol.data_received(b"A1 OK done\r\n")
    await asyncio.wait_for(command.wait(), 1)
    assert command.response.result == "OK" and len(command.response.lines) == 9
