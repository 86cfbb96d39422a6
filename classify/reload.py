"""Hot reload of the rules file that can never leave routing broken.

The holder owns no thread or timer: the daemon's scheduler calls
``refresh()`` every few seconds.  A new file is swapped in only when it
loads cleanly; otherwise the last good rules stay live and the problems are
kept for the health endpoint and logged once per bad version (not on every
tick, which would drown the log).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from classify.loader import load_rules_bytes
from classify.model import Problem, RuleSet
from servicedesk.exceptions import ServiceDeskError

log = structlog.get_logger("servicedesk.rules")


class RulesError(ServiceDeskError):
    """The rules file cannot be used; ``problems`` say where and why (file:line:col each)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True, slots=True)
class RulesStatus:
    """What health checks report: the live version and, if any, why a newer file was refused."""

    ok: bool
    path: str
    version: str
    loaded_at: float
    checked_at: float
    problems: tuple[Problem, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "path": self.path,
            "version": self.version,
            "loaded_at": self.loaded_at,
            "checked_at": self.checked_at,
            "problems": [str(p) for p in self.problems],
        }


class RulesHolder:
    """The live RuleSet plus the bookkeeping to replace it safely."""

    def __init__(
        self,
        path: str | Path,
        *,
        clock: Callable[[], float] = time.time,
        on_refused: Callable[[list[Problem]], None] | None = None,
    ) -> None:
        """Load the file now; raise RulesError if it is bad (there is no older version)."""
        self.path = Path(path)
        self._clock = clock
        self._on_refused = on_refused
        data, stamp = self._read()
        result = load_rules_bytes(data, str(self.path))
        if isinstance(result, list):
            raise RulesError(result)
        self._rules = result
        self._stamp = stamp
        self._digest = hashlib.sha256(data).hexdigest()
        self._refused_digest = ""
        self._problems: tuple[Problem, ...] = ()
        self._loaded_at = self._checked_at = clock()

    @property
    def rules(self) -> RuleSet:
        return self._rules

    def status(self) -> RulesStatus:
        return RulesStatus(
            ok=not self._problems,
            path=str(self.path),
            version=self._rules.version,
            loaded_at=self._loaded_at,
            checked_at=self._checked_at,
            problems=self._problems,
        )

    def _read(self) -> tuple[bytes, tuple[int, int]]:
        stat = self.path.stat()
        return self.path.read_bytes(), (stat.st_mtime_ns, stat.st_size)

    def refresh(self) -> bool:
        """Swap in the file if it changed and is valid; True when new rules went live."""
        self._checked_at = self._clock()
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp == self._stamp:
                return False
            data = self.path.read_bytes()
        except OSError as exc:
            self._refuse([Problem(str(self.path), 1, 1, f"cannot read: {exc.strerror or exc}")], "")
            return False
        self._stamp = stamp
        digest = hashlib.sha256(data).hexdigest()
        if digest == self._digest:
            self._problems = ()  # an edit was reverted: the live rules match the file again
            return False
        if digest == self._refused_digest:
            return False
        result = load_rules_bytes(data, str(self.path))
        if isinstance(result, list):
            self._refuse(result, digest)
            return False
        self._rules = result
        self._digest = digest
        self._problems = ()
        self._refused_digest = ""
        self._loaded_at = self._checked_at
        log.info("rules.reloaded", rules_version=result.version, path=str(self.path))
        return True

    def _refuse(self, problems: list[Problem], digest: str) -> None:
        first_time = digest != self._refused_digest or not self._problems
        self._problems = tuple(problems)
        self._refused_digest = digest
        if first_time:
            log.error(
                "rules.refused",
                keeping_version=self._rules.version,
                path=str(self.path),
                problems=[str(p) for p in problems][:20],
            )
            if self._on_refused is not None:
                self._on_refused(problems)
