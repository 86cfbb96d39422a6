"""What classification hands to the store: where a ticket goes and why."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Decision:
    """The routing of one mail.

    ``reasons`` are short human sentences ("subject has 'salasana'") so an
    agent can see why a ticket landed in a queue; ``rule`` is the name of the
    rule that won, ``rules_version`` identifies the rules file content.
    """

    category: str
    subcategory: str
    organisation: str
    priority: str
    language: str
    rule: str
    reasons: tuple[str, ...] = ()
    rules_version: str = ""
    tags: tuple[str, ...] = ()
    template: str = ""
    suppress_reply: bool = False
    fields: dict[str, str] = field(default_factory=dict)
