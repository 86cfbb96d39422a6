"""Serving the app with uvicorn inside the daemon's event loop.

The daemon owns the signals (SIGTERM sets its ``stop`` event); uvicorn must
not install its own handlers, or a shutdown signal would stop only the web
part.  ``WebServer`` binds its socket itself, so port 0 works (tests) and
the bound port is known before the first request.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator

import uvicorn
from starlette.types import ASGIApp


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without signal handling: the surrounding process decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class WebServer:
    def __init__(
        self,
        app: ASGIApp,
        host: str = "127.0.0.1",
        port: int = 8080,
        *,
        forwarded_allow_ips: str | None = None,
        access_log: bool = False,
    ) -> None:
        """``forwarded_allow_ips``: proxies whose X-Forwarded-For is trusted (the
        rate limit keys on the client address, so set it behind a proxy)."""
        self.host = host
        self.port = port
        self._config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_config=None,
            access_log=access_log,
            proxy_headers=forwarded_allow_ips is not None,
            forwarded_allow_ips=forwarded_allow_ips,
            lifespan="off",
            server_header=False,
        )
        self._server = _EmbeddedServer(self._config)
        self._task: asyncio.Task[None] | None = None

    async def start(self, wait_seconds: float = 10.0) -> int:
        """Bind, start serving, and return the bound port once it accepts connections."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections
        # only when the listening socket says so; without it every response
        # waited ~40 ms on Nagle + delayed ACK (measured).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(128)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        async with asyncio.timeout(wait_seconds):
            while not self._server.started:
                if self._task.done():
                    self._task.result()  # re-raise why it could not start
                    raise RuntimeError("web server stopped during start-up")
                await asyncio.sleep(0.01)
        return self.port

    async def stop(self) -> None:
        """Finish in-flight requests, then close (uvicorn's graceful shutdown)."""
        if self._task is None:
            return
        self._server.should_exit = True
        await self._task
        self._task = None


async def serve(
    app: ASGIApp,
    host: str,
    port: int,
    stop: asyncio.Event,
    *,
    forwarded_allow_ips: str | None = None,
) -> None:
    """Serve until ``stop`` is set: the daemon's ``web`` part."""
    server = WebServer(app, host, port, forwarded_allow_ips=forwarded_allow_ips)
    await server.start()
    try:
        await stop.wait()
    finally:
        await server.stop()
