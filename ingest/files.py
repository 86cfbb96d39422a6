"""Mail from files, folders, Maildirs and stdin: the intake that needs no server."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

from ingest.outcome import SourceRef


def is_maildir(path: Path) -> bool:
    return all((path / sub).is_dir() for sub in ("cur", "new", "tmp"))


def expand(argument: str) -> Iterator[tuple[str, SourceRef]]:
    """Each file an argument names, in a stable order; ``-`` is stdin."""
    if argument == "-":
        yield "-", SourceRef("stdin", "-")
        return
    path = Path(argument)
    if path.is_dir():
        folders = [path / "new", path / "cur"] if is_maildir(path) else [path]
        kind = "maildir" if is_maildir(path) else "file"
        for folder in folders:
            for item in sorted(folder.iterdir()):
                if item.is_file() and not item.name.startswith("."):
                    yield str(item), SourceRef(kind, str(item))
        return
    yield argument, SourceRef("file", argument)


def read(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    return Path(name).read_bytes()


def mark_done(name: str) -> None:
    """Maildir convention for a handled message: move from new/ to cur/ with the S flag."""
    path = Path(name)
    if path.parent.name != "new" or not is_maildir(path.parent.parent):
        return
    target = path.parent.parent / "cur" / f"{path.name.split(':')[0]}:2,S"
    path.replace(target)
