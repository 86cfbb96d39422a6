"""What every request handler needs, built once per app and kept on ``app.state``.

Handlers are plain functions of the request; they reach the runtime, the
templates, the rate limiter and the nonce signer through ``web_context``
so there are no module globals and two apps (SQLite and PostgreSQL in one
test run) never share state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import jinja2
from markupsafe import Markup
from starlette.requests import Request

from ingest.sanitise import sanitise_html
from servicedesk.paths import TEMPLATES_DIR
from servicedesk.runtime import Runtime
from servicedesk.web.health import HealthState
from servicedesk.web.security import FormNonces, RateLimiter

WEB_TEMPLATES = TEMPLATES_DIR / "web"


def _sanitised(html: str) -> Markup:
    """Stored HTML was cleaned at intake; clean again at output so an old row or a
    sanitiser upgrade can never put live markup on the page."""
    return Markup(sanitise_html(html))


def template_environment(directory: Path = WEB_TEMPLATES) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(directory)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        enable_async=False,
    )
    env.filters["sanitised"] = _sanitised
    return env


@dataclass
class WebContext:
    runtime: Runtime
    limiter: RateLimiter
    nonces: FormNonces
    templates: jinja2.Environment
    health: HealthState = field(default_factory=HealthState)
    days_after_close: int = 90
    max_form_bytes: int = 64 * 1024

    @property
    def attachments_dir(self) -> Path:
        return self.runtime.settings.data_dir / "attachments"


def web_context(request: Request) -> WebContext:
    context: WebContext = request.app.state.web
    return context


def client_address(request: Request) -> str:
    """The peer address uvicorn reports (the real client when proxy headers are trusted)."""
    return request.client.host if request.client else "unknown"
