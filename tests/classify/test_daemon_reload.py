"""Hot reload inside a running daemon: a broken rules file never changes routing.

Uses the daemon's own periodic job and pipeline (SQLite store), so what is
tested is what ``servicedesk run`` does every ``rules.reload_seconds``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ingest.outcome import Action, SourceRef
from servicedesk.daemon import Daemon
from servicedesk.runtime import Runtime, open_runtime
from store.models import Ticket

GOOD = """
rules:
  - name: password
    when: {text: [salasana]}
    then: {subcategory: it.password}
fallback:
  then: {subcategory: it.advice}
"""
BROKEN = GOOD.replace("{text: [salasana]}", "{text: {regex: '('}}")
NEWER = GOOD.replace("it.password", "it.access")


def mail(n: int) -> bytes:
    return (
        f"From: Maija <maija@eksote.fi>\r\nTo: servicedesk@example.org\r\n"
        f"Subject: Salasana {n}\r\nMessage-ID: <reload-{n}@test>\r\n"
        f"Date: Mon, 3 Mar 2025 08:00:00 +0200\r\n\r\nUnohdin salasanani.\r\n"
    ).encode()


def write(path: Path, text: str, tick: int) -> None:
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(tick * 10**9, tick * 10**9))


async def route(runtime: Runtime, n: int) -> Ticket:
    outcome = await runtime.pipeline.process(mail(n), SourceRef("file", f"m{n}", ""))
    assert outcome.action is Action.CREATED, outcome
    async with runtime.sessions() as session:
        tickets = (await session.scalars(select(Ticket).order_by(Ticket.id))).all()
        return tickets[-1]


async def test_broken_file_keeps_old_rules_live(
    tmp_path: Path, make_settings: Callable[..., Any]
) -> None:
    rules = tmp_path / "rules.yaml"
    write(rules, GOOD, 1)
    settings = make_settings(f"sqlite:///{tmp_path}/sd.db", rules={"path": rules})
    async with open_runtime(settings) as runtime:
        (job,) = [j for j in Daemon(runtime)._jobs() if j.name == "rules.refresh"]
        first = await route(runtime, 1)
        assert (first.subcategory, first.rule) == ("it.password", "password")
        good_version = first.rules_version

        write(rules, BROKEN, 2)
        await job.func()
        status = runtime.rules.status()
        assert not status.ok
        assert status.problems[0].line == 4
        second = await route(runtime, 2)
        assert (second.subcategory, second.rules_version) == ("it.password", good_version)

        write(rules, NEWER, 3)
        await job.func()
        assert runtime.rules.status().ok
        third = await route(runtime, 3)
        assert third.subcategory == "it.access"
        assert third.rules_version != good_version
