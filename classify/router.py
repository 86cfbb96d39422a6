"""Routing as a value that can travel to the parse workers.

Classifying is as costly as parsing (tokens, stems of every word); done in
the daemon's main process it kept one core busy while the other waited.
A ``Router`` carries the live rules and the settings they need, is pickled
once per rules version and sent to each worker, so a mail comes back from
its worker parsed and routed, by the rules that were live when it was sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from classify.decide import decide
from classify.decision import Decision
from classify.model import RuleSet
from ingest.mail import InboundMail


@dataclass(frozen=True, slots=True)
class Router:
    rules: RuleSet
    organisations: Mapping[str, str]
    default_language: str

    @property
    def version(self) -> str:
        return self.rules.version

    def route(self, mail: InboundMail) -> Decision:
        return decide(mail, self.rules, self.organisations, self.default_language)


@dataclass(frozen=True, slots=True)
class Routed:
    """A parsed mail with the decision its worker already made."""

    mail: InboundMail
    decision: Decision
