"""``create_app``: the whole web side as one ASGI app over a Runtime.

The app holds no state of its own beyond the rate limiter's buckets; every
page and API answer is read from the database, so any number of web
processes can serve the same store.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route

from servicedesk.runtime import Runtime
from servicedesk.web import api, health, pages
from servicedesk.web.context import WebContext, template_environment
from servicedesk.web.health import HealthState
from servicedesk.web.security import SECURITY_HEADERS, FormNonces, RateLimiter, SecurityHeaders

DEFAULT_LOOKUPS_PER_MINUTE = 30.0
DEFAULT_LOOKUP_BURST = 20


async def _http_error(request: Request, exc: Exception) -> Response:
    """404s look the same whatever was asked; the API answers in JSON."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    response: Response
    if request.url.path.startswith("/api/"):
        response = JSONResponse({"error": "not found" if status == 404 else "error"}, status)
    elif status == 404:
        response = pages.not_found(request)
    else:
        response = PlainTextResponse("Error", status_code=status)
    # A 500 is answered outside the middleware stack; give it the same headers here.
    response.headers.update({**SECURITY_HEADERS, "Cache-Control": "no-store"})
    return response


async def _root(request: Request) -> Response:
    return pages.not_found(request)


def create_app(
    runtime: Runtime,
    health_state: HealthState | None = None,
    *,
    lookups_per_minute: float | None = None,
    lookup_burst: int | None = None,
) -> Starlette:
    """The ASGI app: status pages under ``/t/``, agent API under ``/api/v1``, ops endpoints.

    Rate-limit values come from the arguments, then ``web.lookups_per_minute``
    and ``web.lookup_burst`` in settings when those keys exist, then defaults.
    """
    web = runtime.settings.web
    rate = lookups_per_minute or float(
        getattr(web, "lookups_per_minute", DEFAULT_LOOKUPS_PER_MINUTE)
    )
    burst = lookup_burst or int(getattr(web, "lookup_burst", DEFAULT_LOOKUP_BURST))
    context = WebContext(
        runtime=runtime,
        limiter=RateLimiter(rate, burst),
        nonces=FormNonces(runtime.secret_key),
        templates=template_environment(),
        health=health_state or HealthState(),
        days_after_close=web.token_days_after_close,
    )
    routes = [
        Route("/", _root, methods=["GET"]),
        Route("/static/style.css", pages.stylesheet, methods=["GET"]),
        Route("/t/{token}", pages.ticket_page, methods=["GET"]),
        Route("/t/{token}", pages.ticket_post, methods=["POST"]),
        Route("/t/{token}/a/{attachment_id:int}", pages.attachment, methods=["GET"]),
        Route("/healthz", health.healthz, methods=["GET"]),
        Route("/metrics", health.metrics, methods=["GET"]),
        Mount("/api/v1", routes=api.routes()),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={HTTPException: _http_error, 500: _http_error},
    )
    app.state.web = context
    return app
