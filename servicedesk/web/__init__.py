"""The web side: the requester's status page, the agent API, health and metrics."""

from servicedesk.web.app import create_app
from servicedesk.web.health import HealthState
from servicedesk.web.server import WebServer, serve

__all__ = ["HealthState", "WebServer", "create_app", "serve"]
