"""One IMAP connection, typed, with failures turned into three exception kinds.

aioimaplib leaves a command waiting forever when the socket dies under it
(a pending command is only woken by a reply or its own timeout). Every call
here therefore races the command against the connection-lost callback and
a deadline, so a cut connection surfaces at once as ``ImapConnectionError``
and the watcher can reconnect. The watcher only needs to know three things
about a failure: the connection is unusable (reconnect soon), the server
refused our credentials or security (retry slowly, tell the operator), or
one command was refused (the session is still fine).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import shlex
import ssl
from collections.abc import Awaitable, Collection, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import aioimaplib

from ingest.imap_fetch import uid_fetch
from ingest.imap_wire import (
    encode_mailbox,
    parse_bodies,
    parse_search,
    parse_sizes,
    parse_uidvalidity,
    quote,
    uid_set,
)
from servicedesk.settings import ImapSettings

T = TypeVar("T")
_ANNOUNCES_MAIL = re.compile(rb"\*\s+\d+\s+(?:EXISTS|RECENT)\b", re.IGNORECASE)
FETCH_CHUNK = 50
IdleResult = Literal["push", "timeout", "stop"]


class ImapError(Exception):
    """Base of everything this module raises."""


class ImapConnectionError(ImapError):
    """The connection is gone or unusable: reconnect with backoff."""


class ImapAuthError(ImapError):
    """Login refused, or the required security is not on offer: retry slowly."""


class ImapCommandError(ImapError):
    """The server answered NO/BAD to one command; the connection itself is fine."""


class ImapSession:
    """Connect, log in and speak the handful of commands the watcher needs."""

    def __init__(
        self,
        settings: ImapSettings,
        *,
        ssl_context: ssl.SSLContext | None = None,
        ignore_capabilities: Collection[str] = (),
    ) -> None:
        self.settings = settings
        self.timeout = settings.timeout_seconds
        self._ssl_context = ssl_context
        self._ignored = {cap.upper() for cap in ignore_capabilities}
        self._client: aioimaplib.IMAP4 | None = None
        self._lost = asyncio.Event()
        self.mail_arrived = False  # new mail was announced while the last UID SEARCH ran
        self._announced = False
        self.capabilities: frozenset[str] = frozenset()

    # -- connection ------------------------------------------------------------
    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def has(self, capability: str) -> bool:
        return capability.upper() in self.capabilities

    def _on_lost(self, _exc: Exception | None) -> None:
        self._lost.set()

    def _context(self) -> ssl.SSLContext:
        return self._ssl_context or ssl.create_default_context(ssl.Purpose.SERVER_AUTH)

    @property
    def _protocol(self) -> Any:
        if self._client is None:
            raise ImapConnectionError("not connected")
        return self._client.protocol

    async def open(self) -> None:
        """TCP (+TLS), greeting, STARTTLS when asked for, login, capabilities."""
        security = self.settings.security
        try:
            self._client = aioimaplib.IMAP4(
                host=self.settings.host,
                port=self.settings.port,
                timeout=self.timeout,
                conn_lost_cb=self._on_lost,
                ssl_context=self._context() if security == "tls" else None,
            )
            self._note_announcements(self._client.protocol)
            # Raced against connection loss: a peer that accepts and closes at
            # once must not cost a whole timeout.
            await self._race(self._client.wait_hello_from_server(), "greeting")
        except ImapConnectionError:
            self.abort()
            raise
        except (OSError, aioimaplib.AioImapException) as exc:
            self.abort()
            raise ImapConnectionError(f"connect failed: {describe(exc)}") from exc
        if security == "starttls":
            await self._starttls()
        await self._login()
        await self._race(self._protocol.capability(), "CAPABILITY")
        self.capabilities = frozenset(
            cap.upper() for cap in self._protocol.capabilities if cap.upper() not in self._ignored
        )

    async def _starttls(self) -> None:
        protocol = self._protocol
        if "STARTTLS" not in {cap.upper() for cap in protocol.capabilities}:
            raise ImapAuthError("security=starttls but the server does not offer STARTTLS")
        command = aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
        await self._checked(protocol.execute(command), "STARTTLS")
        loop = asyncio.get_running_loop()
        try:
            protocol.transport = await asyncio.wait_for(
                loop.start_tls(
                    protocol.transport,
                    protocol,
                    self._context(),
                    server_hostname=self.settings.host,
                ),
                self.timeout,
            )
        except (OSError, TimeoutError) as exc:
            raise ImapConnectionError(f"TLS handshake failed: {describe(exc)}") from exc
        # RFC 3501 6.2.1: capabilities from before STARTTLS must be discarded.
        await self._race(protocol.capability(), "CAPABILITY")

    async def _login(self) -> None:
        protocol = self._protocol
        user = quote(self.settings.user)
        if self.settings.oauth2_token_file or self.settings.oauth2_token_command:
            token = await oauth2_token(self.settings)
            response = await self._race(self._xoauth2(token), "AUTHENTICATE")
        else:
            response = await self._race(protocol.login(user, self.settings.secret()), "LOGIN")
        if response.result != "OK":
            raise ImapAuthError(f"login refused for {self.settings.user!r}: {_last_line(response)}")

    async def _xoauth2(self, token: str) -> Any:
        """AUTHENTICATE XOAUTH2, answering a refusal's error challenge.

        A server that refuses the token sends ``+ <base64 JSON error>`` and
        waits for an empty reply before its tagged NO (the XOAUTH2 protocol).
        aioimaplib does not answer it, so an expired token would hang until
        the timeout and look like a network fault instead of a refused login.
        """
        protocol = self._protocol
        plain = protocol._continuation

        def continuation(line: bytes) -> None:
            pending = protocol.pending_sync_command
            if pending is not None and pending.name == "AUTHENTICATE":
                protocol.transport.write(b"\r\n")
                return
            plain(line)

        protocol._continuation = continuation
        try:
            return await protocol.xoauth2(self.settings.user, token)
        finally:
            protocol._continuation = plain

    async def logout(self) -> None:
        """Polite goodbye; never raises, never takes longer than a couple of seconds."""
        if self._client is not None and not self.lost:
            with contextlib.suppress(ImapError, aioimaplib.AioImapException, OSError):
                await self._race(self._protocol.logout(), "LOGOUT", min(self.timeout, 2.0))
        self.abort()

    def abort(self) -> None:
        """Drop the socket now (after a failure, or when our task is cancelled)."""
        client, self._client = self._client, None
        transport = getattr(client.protocol, "transport", None) if client else None
        if transport is not None:
            transport.abort()
        if client is not None:
            for task in list(client.tasks) + list(client.protocol.tasks):
                task.cancel()

    # -- plumbing --------------------------------------------------------------
    async def _race(self, awaitable: Awaitable[T], what: str, limit: float = 0.0) -> T:
        """Await ``awaitable`` unless the connection dies or the deadline passes first.

        ``limit`` 0 means the configured timeout; ``math.inf`` means no deadline.
        """
        if self.lost:
            raise ImapConnectionError(f"connection lost before {what}")
        seconds = limit or self.timeout
        task = asyncio.ensure_future(awaitable)
        watcher = asyncio.ensure_future(self._lost.wait())
        try:
            done, _ = await asyncio.wait(
                {task, watcher},
                timeout=None if math.isinf(seconds) else seconds,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            watcher.cancel()
            if not task.done():
                task.cancel()
        if task in done:
            if task.cancelled():
                raise ImapConnectionError(f"{what} was abandoned (connection closed)")
            try:
                return task.result()
            except (aioimaplib.AioImapException, OSError, TimeoutError) as exc:
                raise ImapConnectionError(f"{what} failed: {describe(exc)}") from exc
        if watcher in done:
            raise ImapConnectionError(f"connection lost during {what}")
        raise ImapConnectionError(f"{what} timed out after {seconds}s")

    async def _checked(self, awaitable: Awaitable[Any], what: str, limit: float = 0.0) -> Any:
        response = await self._race(awaitable, what, limit)
        if response.result != "OK":
            raise ImapCommandError(f"{what}: {response.result} {_last_line(response)}")
        return response

    # -- commands --------------------------------------------------------------
    async def select(self, folder: str) -> int:
        """SELECT the folder; return its UIDVALIDITY."""
        response = await self._checked(self._protocol.select(encode_mailbox(folder)), "SELECT")
        uidvalidity = parse_uidvalidity(response.lines)
        if uidvalidity == 0:
            raise ImapCommandError(f"SELECT {folder!r}: server sent no UIDVALIDITY")
        return uidvalidity

    async def ensure_folder(self, folder: str) -> bool:
        """CREATE the folder unless LIST finds it; return True when it was created."""
        name = encode_mailbox(folder)
        listed = await self._checked(self._protocol.simple_command("LIST", '""', name), "LIST")
        if any(isinstance(line, bytes) and line.strip() for line in listed.lines[:-1]):
            return False
        await self._checked(self._protocol.simple_command("CREATE", name), "CREATE")
        return True

    async def uid_search(self, *criteria: str) -> list[int]:
        protocol = self._protocol
        self._announced = False
        response = await self._checked(
            protocol.search(*criteria, charset=None, by_uid=True), "UID SEARCH"
        )
        # Mail that arrived while the search ran is announced with its answer
        # and never again, not even in IDLE: the caller must search once more.
        self.mail_arrived = self._announced
        return parse_search(response.lines)

    def _note_announcements(self, protocol: Any) -> None:
        """Remember ``* n EXISTS`` lines, in IDLE and outside it.

        aioimaplib drops untagged lines that no pending command claims, and
        a UID SEARCH claims only ``* SEARCH``: the announcement of a mail that
        arrived during the search was lost, and that mail waited for the poll
        interval (found by the real-server test). Every untagged line passes
        through this one method of the protocol, so it is wrapped here, and
        IDLE reads the same flag.
        """
        untagged = protocol._untagged_response

        def noting(line: bytes) -> Any:
            if _ANNOUNCES_MAIL.match(line):
                self._announced = True
            return untagged(line)

        protocol._untagged_response = noting

    async def fetch_sizes(self, uids: Sequence[int]) -> dict[int, int]:
        response = await self._fetch(uids, "(UID RFC822.SIZE)")
        return parse_sizes(response.lines)

    async def fetch_bodies(self, uids: Sequence[int]) -> list[tuple[int, bytes]]:
        """Raw bytes without setting \\Seen (BODY.PEEK): fetching is not acknowledging.

        At most ``FETCH_CHUNK`` mails per command: before ``LinearFetch``
        aioimaplib's cost grew with the square of the mails in one response
        (measured: 100 per command fetched at half the rate of 50); smaller
        responses also keep the bytes in flight small.
        """
        bodies: list[tuple[int, bytes]] = []
        for start in range(0, len(uids), FETCH_CHUNK):
            response = await self._fetch(uids[start : start + FETCH_CHUNK], "(UID BODY.PEEK[])")
            bodies += parse_bodies(response.lines)
        return bodies

    async def _fetch(self, uids: Sequence[int], items: str) -> Any:
        # No overall deadline: a big batch may take long. aioimaplib's own
        # timer fires when no data arrived for ``timeout`` seconds.
        command = uid_fetch(self._protocol, uid_set(uids), items, self.timeout)
        return await self._checked(command, "UID FETCH", math.inf)

    async def move(self, uids: Sequence[int], folder: str) -> None:
        """UID MOVE, or COPY + \\Deleted + (UID) EXPUNGE on servers without MOVE."""
        protocol, uids_text, target = self._protocol, uid_set(uids), encode_mailbox(folder)
        if self.has("MOVE"):
            await self._checked(protocol.move(uids_text, target, by_uid=True), "UID MOVE")
            return
        await self._checked(protocol.copy(uids_text, target, by_uid=True), "UID COPY")
        await self.delete(uids)

    async def add_flags(self, uids: Sequence[int], flags: str) -> None:
        command = self._protocol.store(uid_set(uids), "+FLAGS.SILENT", f"({flags})", by_uid=True)
        await self._checked(command, "UID STORE")

    async def delete(self, uids: Sequence[int]) -> None:
        """\\Deleted then expunge; plain EXPUNGE (all \\Deleted mail) only without UIDPLUS."""
        await self.add_flags(uids, "\\Deleted")
        protocol = self._protocol
        if self.has("UIDPLUS"):
            await self._checked(protocol.expunge(uid_set(uids), by_uid=True), "UID EXPUNGE")
        else:
            await self._checked(protocol.expunge(), "EXPUNGE")

    async def idle(self, seconds: float, stop: asyncio.Event) -> IdleResult:
        """IDLE until new mail (EXISTS/RECENT), ``seconds`` pass, or ``stop`` is set; then DONE."""
        client = self._client
        if client is None:
            raise ImapConnectionError("not connected")
        queue: asyncio.Queue[Any] = client.protocol.idle_queue
        while not queue.empty():  # pushes from an earlier IDLE were already acted upon
            queue.get_nowait()
        self._announced = False
        idle_task = await self._race(client.idle_start(timeout=seconds + 60), "IDLE")
        try:
            result = await self._wait_push(queue, seconds, stop)
        finally:
            if not self.lost:
                client.idle_done()
        await self._checked(idle_task, "IDLE DONE")
        return result

    async def _wait_push(
        self, queue: asyncio.Queue[Any], seconds: float, stop: asyncio.Event
    ) -> IdleResult:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return "timeout"
            push = asyncio.ensure_future(queue.get())
            stopped = asyncio.ensure_future(stop.wait())
            lost = asyncio.ensure_future(self._lost.wait())
            done, pending = await asyncio.wait(
                {push, stopped, lost}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
            for task in pending:
                task.cancel()
            if push in done and self._announced:  # noted as the line came in
                return "push"
            if lost in done:
                raise ImapConnectionError("connection lost during IDLE")
            if stopped in done:
                return "stop"

    async def wait_poll(self, seconds: float, stop: asyncio.Event) -> None:
        """Sleep between polls, waking early on stop or when the connection drops."""
        stopped = asyncio.ensure_future(stop.wait())
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            await asyncio.wait(
                {stopped, lost}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            stopped.cancel()
            lost.cancel()
        if self.lost and not stop.is_set():
            raise ImapConnectionError("connection lost while waiting to poll")


async def oauth2_token(settings: ImapSettings) -> str:
    """The current access token, from the configured file or command."""
    if settings.oauth2_token_file:
        path = Path(settings.oauth2_token_file)
        try:
            return (await asyncio.to_thread(path.read_text, encoding="utf-8")).strip()
        except OSError as exc:
            raise ImapAuthError(
                f"cannot read imap.oauth2_token_file {path}: {exc.strerror}"
            ) from exc
    argv = shlex.split(settings.oauth2_token_command)
    try:
        process = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
    except OSError as exc:
        raise ImapAuthError(f"cannot run imap.oauth2_token_command: {exc}") from exc
    try:
        out, err = await asyncio.wait_for(process.communicate(), settings.timeout_seconds)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise ImapAuthError(
            f"imap.oauth2_token_command gave no token within {settings.timeout_seconds:g} s"
        ) from None
    token = out.decode("utf-8", "replace").strip()
    if process.returncode != 0 or not token:
        why = err.decode("utf-8", "replace").strip()[:200] or "no output"
        raise ImapAuthError(f"imap.oauth2_token_command failed (exit {process.returncode}): {why}")
    return token


def _last_line(response: Any) -> str:
    lines = [line for line in response.lines if isinstance(line, bytes)]
    return lines[-1].decode("utf-8", "replace")[:200] if lines else ""


def describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
