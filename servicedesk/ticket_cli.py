"""``servicedesk ticket list|show|set|reply|note|link`` and ``servicedesk agent add``.

The command-line twin of the agent API: the same ``store.actions`` calls,
so a change made here leaves the same event and queues the same mail.  The
actor is ``--as NAME`` (default ``cli:<login>``) because every change must
say who made it.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Sequence
from typing import Any

from servicedesk.runtime import Runtime, open_runtime
from servicedesk.settings import load_settings
from servicedesk.web import serialise
from store import actions, agents, views
from store.db import transaction
from store.models import Ticket

EX_USAGE = 2
EX_NOT_FOUND = 4


def _default_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _open(args: argparse.Namespace) -> Any:
    return open_runtime(load_settings(getattr(args, "config", None)))


def _print_json(value: object) -> None:
    print(json.dumps(value, ensure_ascii=False, default=str), flush=True)


def _text_argument(value: str) -> str:
    """``-`` reads the text from stdin, so long replies can be piped in."""
    return sys.stdin.read() if value == "-" else value


async def _find(
    runtime: Runtime, session: Any, ref: str, *, for_update: bool = False
) -> Ticket | None:
    ticket = await views.ticket_by_number(session, ref, runtime.numbering, for_update=for_update)
    if ticket is None:
        print(f"servicedesk: no ticket {ref!r}", file=sys.stderr)
    return ticket


async def _list(args: argparse.Namespace) -> int:
    spec = views.TicketFilter(
        status=tuple(args.status or ()),
        category=tuple(args.category or ()),
        organisation=tuple(args.organisation or ()),
        assignee=args.assignee,
        text=args.text or "",
        limit=args.limit,
        offset=args.offset,
    )
    async with _open(args) as runtime, runtime.sessions() as session:
        rows, total = await views.list_tickets(session, spec)
        for ticket in rows:
            if args.json:
                _print_json(serialise.ticket_summary(ticket, runtime.numbering))
            else:
                print(
                    f"{runtime.numbering.format(ticket.id)}  {ticket.status:<8}  "
                    f"{ticket.subcategory or ticket.category:<20}  {ticket.organisation:<20}  "
                    f"{ticket.priority:<6}  {ticket.assignee or '-':<12}  {ticket.subject}"
                )
        if not args.json:
            print(f"({len(rows)} of {total})")
    return 0


def _print_detail(body: dict[str, Any]) -> None:
    print(f"{body['number']}  {body['subject']}")
    for key in ("status", "category", "subcategory", "organisation", "priority", "assignee",
                "language", "requester_email", "rule"):  # fmt: skip
        print(f"  {key:<16} {body[key]}")
    print("  reasons:")
    for reason in body["reasons"]:
        print(f"    - {reason}")
    if body["feedback"]:
        fb = body["feedback"]
        print(
            f"  feedback         {'helpful' if fb['helpful'] else 'not helpful'}: {fb['comment']}"
        )
    print("messages:")
    for m in body["messages"]:
        who = m["author"] or m["from_email"] or m["from_name"]
        print(f"  #{m['id']} {m['created_at']} {m['direction']} {m['visibility']} {who}")
        for line in (m["text"] or "(html only)").splitlines()[:40]:
            print(f"      {line}")
    print("events:")
    for e in body["events"]:
        change = f" {e['old']} -> {e['new']}" if e["old"] or e["new"] else ""
        print(f"  {e['created_at']} {e['kind']}{change} by {e['actor']}")


async def _show(args: argparse.Namespace) -> int:
    async with _open(args) as runtime, runtime.sessions() as session:
        ticket = await _find(runtime, session, args.ref)
        if ticket is None:
            return EX_NOT_FOUND
        body = serialise.ticket_detail(
            await views.ticket_detail(session, ticket), runtime.numbering
        )
    if args.json:
        _print_json(body)
    else:
        _print_detail(body)
    return 0


async def _set(args: argparse.Namespace) -> int:
    changes = {
        key: value for key in actions.CHANGE_FIELDS if (value := getattr(args, key)) is not None
    }
    if not changes:
        print("servicedesk: nothing to change (give --status, --category, ...)", file=sys.stderr)
        return EX_USAGE
    async with _open(args) as runtime:
        try:
            async with transaction(runtime.sessions, writer=True) as session:
                ticket = await _find(runtime, session, args.ref, for_update=True)
                if ticket is None:
                    return EX_NOT_FOUND
                events = await actions.apply_changes(session, ticket, changes, actor=args.actor)
        except actions.ActionError as exc:
            print(f"servicedesk: {exc}", file=sys.stderr)
            return EX_USAGE
    for event in events:
        print(f"{args.ref}: {event.kind} {event.old or '-'} -> {event.new or '-'}")
    if not events:
        print(f"{args.ref}: no change")
    return 0


async def _post(args: argparse.Namespace) -> int:
    act = actions.public_reply if args.ticket_command == "reply" else actions.internal_note
    async with _open(args) as runtime:
        try:
            async with transaction(runtime.sessions, writer=True) as session:
                ticket = await _find(runtime, session, args.ref, for_update=True)
                if ticket is None:
                    return EX_NOT_FOUND
                posted = await act(session, ticket, _text_argument(args.text), actor=args.actor)
        except actions.ActionError as exc:
            print(f"servicedesk: {exc}", file=sys.stderr)
            return EX_USAGE
    queued = f", mail queued (outbox #{posted.outbox_id})" if posted.outbox_id else ""
    print(f"{args.ref}: {args.ticket_command} stored as message #{posted.message.id}{queued}")
    return 0


async def _link(args: argparse.Namespace) -> int:
    """Print the tracking link; ``--rotate`` kills the old one first."""
    async with _open(args) as runtime:
        async with transaction(runtime.sessions, writer=True) as session:
            ticket = await _find(runtime, session, args.ref, for_update=True)
            if ticket is None:
                return EX_NOT_FOUND
            if args.rotate:
                token: str | None = await actions.rotate_view_token(
                    session, ticket, runtime.secret_key, actor=args.actor
                )
            else:
                token = await actions.current_view_token(session, ticket.id, runtime.secret_key)
        if token is None:
            print(f"servicedesk: {args.ref} has no live link (use --rotate)", file=sys.stderr)
            return EX_NOT_FOUND
        print(f"{runtime.settings.web.base_url}/t/{token}")
    return 0


async def _agent_add(args: argparse.Namespace) -> int:
    async with _open(args) as runtime:
        try:
            async with transaction(runtime.sessions) as session:
                token = await agents.add_agent(session, args.name, rotate=args.rotate)
        except agents.AgentError as exc:
            print(f"servicedesk: {exc}", file=sys.stderr)
            return EX_USAGE
    print(token)
    print(
        f"agent {args.name}: this token is shown once; keep it secret "
        "(Authorization: Bearer <token>).",
        file=sys.stderr,
    )
    return 0


def _common(parents: Sequence[argparse.ArgumentParser]) -> list[argparse.ArgumentParser]:
    if parents:
        return list(parents)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="TOML config file (default: ./servicedesk.toml)")
    return [common]


def add_parsers(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: Sequence[argparse.ArgumentParser] = (),
) -> None:
    """Add ``ticket`` and ``agent`` to the main parser; handlers are coroutines.

    ``parents`` is the main CLI's common parser (``--config``, ...); without
    it a ``--config`` option is added here.
    """
    common = _common(parents)
    actor = argparse.ArgumentParser(add_help=False)
    actor.add_argument("--as", dest="actor", default=_default_actor(), help="who is acting")

    ticket = subparsers.add_parser("ticket", help="work tickets: list, show, set, reply, note")
    sub = ticket.add_subparsers(dest="ticket_command", required=True)

    listing = sub.add_parser("list", parents=common, help="list tickets, newest first")
    listing.add_argument("--status", action="append", help="repeatable")
    listing.add_argument("--category", action="append", help="category or subcategory")
    listing.add_argument("--organisation", action="append")
    listing.add_argument("--assignee")
    listing.add_argument("--text", "-q", help="search subject, requester and messages")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--offset", type=int, default=0)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(handler=_list)

    show = sub.add_parser("show", parents=common, help="one ticket with messages and events")
    show.add_argument("ref", help="ticket number, e.g. SD-000123")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=_show)

    change = sub.add_parser("set", parents=[*common, actor], help="change fields")
    change.add_argument("ref")
    for name in actions.CHANGE_FIELDS:
        change.add_argument(f"--{name}")
    change.set_defaults(handler=_set)

    for name, helptext in (("reply", "public reply, mailed"), ("note", "internal note")):
        post = sub.add_parser(name, parents=[*common, actor], help=helptext)
        post.add_argument("ref")
        post.add_argument("text", help="the text, or - to read stdin")
        post.set_defaults(handler=_post)

    link = sub.add_parser("link", parents=[*common, actor], help="print the tracking link")
    link.add_argument("ref")
    link.add_argument("--rotate", action="store_true", help="revoke the old link first")
    link.set_defaults(handler=_link)

    agent = subparsers.add_parser("agent", help="agent API tokens")
    agent_sub = agent.add_subparsers(dest="agent_command", required=True)
    add = agent_sub.add_parser("add", parents=common, help="create an agent, print its token")
    add.add_argument("name")
    add.add_argument("--rotate", action="store_true", help="replace an existing agent's token")
    add.set_defaults(handler=_agent_add)
