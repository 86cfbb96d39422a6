"""The hot-reload holder keeps the last good rules when the file goes bad."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from classify.decide import decide
from classify.model import Problem
from classify.reload import RulesError, RulesHolder

from .helpers import mail

GOOD = """
rules:
  - name: password
    when: {subject: [salasana]}
    then: {subcategory: it.password}
fallback:
  then: {subcategory: it.advice}
"""
NEWER = GOOD.replace("it.password", "it.access")
BROKEN = GOOD.replace("it.password", "it.passwd")


def write(path: Path, text: str, tick: int) -> None:
    path.write_text(text, encoding="utf-8")
    # Filesystems with coarse mtimes: make each write visibly newer.
    os.utime(path, ns=(tick * 10**9, tick * 10**9))


def test_refuses_to_start_on_a_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    write(path, BROKEN, 1)
    with pytest.raises(RulesError) as info:
        RulesHolder(path)
    assert "unknown subcategory 'it.passwd'" in str(info.value)


def test_swaps_valid_and_keeps_old_on_broken(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    write(path, GOOD, 1)
    refused: list[list[Problem]] = []
    holder = RulesHolder(path, on_refused=refused.append)
    first = holder.rules.version
    salasana = mail("salasana")
    assert decide(salasana, holder.rules).subcategory == "it.password"

    assert holder.refresh() is False  # unchanged file: nothing to do
    write(path, BROKEN, 2)
    assert holder.refresh() is False
    assert holder.rules.version == first
    assert decide(salasana, holder.rules).subcategory == "it.password"
    status = holder.status()
    assert not status.ok
    assert status.problems[0].line == 5
    assert "it.passwd" in status.as_dict()["problems"][0]  # type: ignore[index]
    assert len(refused) == 1

    holder.refresh()
    os.utime(path, ns=(3 * 10**9, 3 * 10**9))  # touched, same bad content
    holder.refresh()
    assert len(refused) == 1  # logged once per bad version, not on every tick

    write(path, NEWER, 4)
    assert holder.refresh() is True
    assert holder.rules.version != first
    assert holder.status().ok
    assert decide(salasana, holder.rules).subcategory == "it.access"


def test_deleted_file_keeps_rules(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    write(path, GOOD, 1)
    holder = RulesHolder(path)
    path.unlink()
    assert holder.refresh() is False
    assert not holder.status().ok
    assert "cannot read" in str(holder.status().problems[0])
    assert decide(mail("salasana"), holder.rules).subcategory == "it.password"


def test_reverted_edit_clears_error(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    write(path, GOOD, 1)
    holder = RulesHolder(path)
    write(path, BROKEN, 2)
    holder.refresh()
    write(path, GOOD, 3)
    assert holder.refresh() is False
    assert holder.status().ok
