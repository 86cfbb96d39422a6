"""Response headers, the token-lookup rate limit and form nonces.

The status page has no login, so its defences are all here: a CSP that
forbids every script (a sanitiser bug then still cannot run code), no
caching and no referrer (the token is in the URL), a rate limit that makes
guessing tokens pointless even beyond their 192 bits, and an HMAC nonce on
forms so another site cannot post into a ticket.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


class SecurityHeaders:
    """Adds the headers above to every response; ``no-store`` unless a route chose caching.

    Pure ASGI (not BaseHTTPMiddleware) so streamed downloads stay streamed.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
                if "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """A token bucket per client address, in this process's memory.

    Each process (and each web replica behind a load balancer) counts on its
    own, so the effective limit is ``replicas x rate``; that still caps a
    guesser at a few requests per second, which is all it is for.  Behind a
    reverse proxy run uvicorn with ``--forwarded-allow-ips`` so the client
    address is the real one and not the proxy's.
    """

    def __init__(
        self,
        per_minute: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 50_000,
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._clock = clock
        self._max_clients = max_clients
        self._buckets: dict[str, _Bucket] = {}

    def allow(self, client: str) -> bool:
        """Take one token for ``client``; False when its bucket is empty."""
        now = self._clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= self._max_clients:
                self._prune(now)
            bucket = self._buckets[client] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
        bucket.stamp = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def retry_after(self, client: str) -> int:
        bucket = self._buckets.get(client)
        if bucket is None or self.rate <= 0:
            return 60
        return max(1, int((1.0 - bucket.tokens) / self.rate) + 1)

    def _prune(self, now: float) -> None:
        """Forget buckets that have refilled (they behave like new ones), then the oldest."""
        full = [
            key
            for key, b in self._buckets.items()
            if b.tokens + (now - b.stamp) * self.rate >= self.burst
        ]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= self._max_clients:
            for key in sorted(self._buckets, key=lambda k: self._buckets[k].stamp)[
                : len(self._buckets) // 2
            ]:
                del self._buckets[key]


class FormNonces:
    """``<issued>.<hmac>`` bound to the ticket token and the form's purpose.

    A page rendered for one link yields nonces only for that link, and they
    expire; with ``form-action 'self'`` and no cookies at all this is the
    whole CSRF defence, and it needs no server-side state.
    """

    def __init__(self, secret_key: bytes, max_age_seconds: int = 12 * 3600) -> None:
        self._key = hashlib.sha256(b"servicedesk form nonce\0" + secret_key).digest()
        self.max_age = max_age_seconds

    def _mac(self, token: str, purpose: str, issued: int) -> str:
        message = f"{purpose}\0{token}\0{issued}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:32]

    def issue(self, token: str, purpose: str, now: float | None = None) -> str:
        issued = int(now if now is not None else time.time())
        return f"{issued}.{self._mac(token, purpose, issued)}"

    def check(self, nonce: str, token: str, purpose: str, now: float | None = None) -> bool:
        issued_text, _, mac = nonce.partition(".")
        if not re.fullmatch(r"[0-9]{1,12}", issued_text):  # not isdigit(): "²" is a digit
            return False
        issued = int(issued_text)
        age = (now if now is not None else time.time()) - issued
        if age < -60 or age > self.max_age:
            return False
        return hmac.compare_digest(mac, self._mac(token, purpose, issued))
