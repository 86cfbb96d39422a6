"""``servicedesk quarantine list|show|release|drop``: the operator's view of held mail.

Wired into servicedesk.cli with ``add_parsers(subparsers, common)``. Every
command loads the config like the daemon and goes through the same runtime,
so ``release`` re-processes a mail exactly as the daemon would (same limits,
rules and parser). Output is one line per item; ``--json`` gives one JSON
object per line for scripts.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from servicedesk import logs
from servicedesk.settings import Settings, load_settings
from store import quarantine

EX_NOTFOUND = 1


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(getattr(args, "config", None))
    # Command output goes to stdout; only problems belong on stderr.
    logs.configure("warning", getattr(args, "log_format", None) or "console")
    return settings


def _emit(args: argparse.Namespace, record: dict[str, Any], text: str) -> None:
    print(json.dumps(record, ensure_ascii=False, default=str) if args.json else text, flush=True)


def _entry_record(entry: quarantine.Entry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "received": entry.received_at.isoformat(timespec="seconds"),
        "state": entry.state,
        "reason": entry.reason,
        "sender": entry.sender,
        "subject": entry.subject,
        "size": entry.size,
    }


async def _list(args: argparse.Namespace) -> int:
    from servicedesk.runtime import open_runtime

    states = tuple(args.state) if args.state else (quarantine.HELD, quarantine.RELEASING)
    async with open_runtime(_settings(args)) as runtime, runtime.sessions() as session:
        entries = await quarantine.list_entries(session, states, args.limit)
    for e in entries:
        text = (
            f"#{e.id}  {e.received_at:%Y-%m-%d %H:%M}  {e.state:<9}  {e.sender[:40]:<40}  "
            f"{e.subject[:50]!r}  — {e.reason[:120]}"
        )
        _emit(args, _entry_record(e), text)
    if not entries and not args.json:
        print("(no quarantined mail)")
    return 0


async def _show(args: argparse.Namespace) -> int:
    from servicedesk.runtime import open_runtime

    async with open_runtime(_settings(args)) as runtime, runtime.sessions() as session:
        try:
            detail = await quarantine.show(session, args.id)
        except quarantine.QuarantineError as exc:
            print(f"servicedesk: {exc}")
            return EX_NOTFOUND
    e = detail.entry
    record = _entry_record(e) | {
        "source": e.source,
        "sha256": detail.raw_sha256,
        "headers": [list(h) for h in detail.headers],
    }
    lines = [
        f"quarantined mail #{e.id} ({e.state})",
        f"received: {e.received_at:%Y-%m-%d %H:%M:%S}",
        f"reason:   {e.reason}",
        f"size:     {e.size} bytes (sha256 {detail.raw_sha256})",
        f"source:   {e.source}",
        "headers:",
        *(f"  {name}: {value[:300]}" for name, value in detail.headers),
    ]
    _emit(args, record, "\n".join(lines))
    return 0


async def _release(args: argparse.Namespace) -> int:
    from servicedesk.runtime import open_runtime

    async with open_runtime(_settings(args)) as runtime:
        try:
            outcome = await quarantine.release(runtime.sessions, args.id, runtime.pipeline.process)
        except quarantine.QuarantineError as exc:
            print(f"servicedesk: {exc}")
            return EX_NOTFOUND
    record = {
        "id": args.id,
        "action": outcome.action.value,
        "ticket": outcome.ticket,
        "reason": outcome.reason,
    }
    _emit(
        args, record, f"#{args.id}: {outcome.action.value} {outcome.ticket or ''} {outcome.reason}"
    )
    return 0 if outcome.action.acknowledged else 75


async def _drop(args: argparse.Namespace) -> int:
    from servicedesk.runtime import open_runtime

    async with open_runtime(_settings(args)) as runtime:
        try:
            entry = await quarantine.drop(runtime.sessions, args.id, args.note)
        except quarantine.QuarantineError as exc:
            print(f"servicedesk: {exc}")
            return EX_NOTFOUND
    _emit(args, _entry_record(entry), f"#{entry.id}: dropped (kept on record)")
    return 0


def add_parsers(
    subparsers: argparse._SubParsersAction,  # type: ignore[type-arg]
    common: argparse.ArgumentParser | None = None,
) -> None:
    """Add ``quarantine`` and its four commands to the main parser's subparsers."""
    if common is None:
        common = argparse.ArgumentParser(add_help=False)
        common.add_argument("--config", help="TOML config file")
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--json", action="store_true", help="one JSON object per line")
    parents = [common, output]

    top = subparsers.add_parser("quarantine", help="list, inspect, release or drop held mail")
    sub = top.add_subparsers(dest="quarantine_command", required=True)

    show_list = sub.add_parser("list", parents=parents, help="held mail with reasons")
    show_list.add_argument(
        "--state", action="append", choices=quarantine.STATES, help="repeatable; default held"
    )
    show_list.add_argument("--limit", type=int, default=100)
    show_list.set_defaults(handler=_list)

    show = sub.add_parser("show", parents=parents, help="reason, headers and size of one mail")
    show.add_argument("id", type=int)
    show.set_defaults(handler=_show)

    release = sub.add_parser("release", parents=parents, help="re-run a held mail")
    release.add_argument("id", type=int)
    release.set_defaults(handler=_release)

    drop = sub.add_parser("drop", parents=parents, help="mark as dropped (never deleted)")
    drop.add_argument("id", type=int)
    drop.add_argument("--note", default="", help="why, kept with the record")
    drop.set_defaults(handler=_drop)
