"""Every public corpus mail ends with an answer, never an exception, and only once."""

from __future__ import annotations

from pathlib import Path

from ingest.outcome import Action, SourceRef
from servicedesk.runtime import Runtime

FINAL = {Action.CREATED, Action.UPDATED, Action.DUPLICATE, Action.IGNORED, Action.QUARANTINED}


async def test_corpus_each_mail_gets_an_answer_and_reingest_is_duplicate(
    runtime: Runtime, corpus: list[Path]
) -> None:
    first = {}
    for path in corpus:
        outcome = await runtime.pipeline.process(path.read_bytes(), SourceRef("file", str(path)))
        assert outcome.action in FINAL, (path, outcome)
        first[path] = outcome
    assert sum(o.action is Action.CREATED for o in first.values()) > len(corpus) // 2
    assert any(o.action is Action.QUARANTINED for o in first.values())
    assert any(o.action is Action.IGNORED for o in first.values())
    for path in corpus:
        again = await runtime.pipeline.process(path.read_bytes(), SourceRef("file", str(path)))
        assert again.action is Action.DUPLICATE, (path, again)
