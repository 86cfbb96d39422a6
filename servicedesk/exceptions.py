"""The root of the project's own errors.

Subclasses live beside the code they serve (``ConfigError`` in settings,
``RulesError`` in classify); callers that only need "ours vs. a bug" catch
``ServiceDeskError``. Expected outcomes (ignored, quarantined, duplicate) are
values, never exceptions.
"""


class ServiceDeskError(Exception):
    """Something the operator can act on, with a message meant for them."""
