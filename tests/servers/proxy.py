"""A loopback TCP proxy that can cut every connection on demand.

Stopping a server tests a restart; the proxy tests the other kind of
failure: the server lives on, but the network path dies under an open
session (NAT timeout, load balancer reset). ``cut()`` drops all current
connections at once; ``refuse()`` additionally closes every new connection
right after accepting it until ``accept()`` is called, so reconnect backoff
can be observed.

It runs its own event loop in a daemon thread so it works from sync and
async tests alike, independent of pytest-asyncio's per-test loops.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable

from tests.servers.ports import LOOPBACK


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.host = LOOPBACK
        self.port = 0
        self.accepted = 0  # connections accepted so far (refused ones included)
        self._refusing = False
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle (called from the test's thread) ---------------------------------
    def start(self) -> TcpProxy:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10) or self.port == 0:
            raise RuntimeError("proxy did not start")
        return self

    def stop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def cut(self) -> int:
        """Reset every open connection; return how many were cut."""
        return self._call(self._cut)

    def refuse(self) -> None:
        """Cut everything and close new connections immediately, until accept()."""
        self._refusing = True
        self.cut()

    def accept(self) -> None:
        self._refusing = False

    @property
    def open_connections(self) -> int:
        return len(self._writers) // 2

    # -- inside the proxy's loop -----------------------------------------------------
    def _call(self, fn: Callable[[], int]) -> int:
        """Run ``fn`` on the proxy's loop (its sets are not thread-safe) and wait."""
        if self._loop is None:
            raise RuntimeError("proxy not running")

        async def run() -> int:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    def _serve(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop

        async def open_server() -> None:
            self._server = await asyncio.start_server(self._client, LOOPBACK, 0)
            self.port = self._server.sockets[0].getsockname()[1]

        loop.run_until_complete(open_server())
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _shutdown(self) -> None:
        self._cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _cut(self) -> int:
        count = len(self._writers) // 2
        for writer in list(self._writers):
            transport = writer.transport
            if isinstance(transport, asyncio.Transport):
                transport.abort()  # RST-like: no FIN handshake, no pending writes
        self._writers.clear()
        return count

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self._refusing:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )
        for w in (writer, up_writer):
            self._writers.discard(w)
            w.transport.abort()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        with contextlib.suppress(Exception):
            writer.write_eof()
