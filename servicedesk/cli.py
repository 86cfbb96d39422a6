"""The ``servicedesk`` command: one entry point, one subcommand per job."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Sequence

import structlog

from servicedesk import logs
from servicedesk.exceptions import ServiceDeskError
from servicedesk.settings import Settings, load_settings

EX_TEMPFAIL = 75  # sendmail/MTA convention: "try again later"
EX_CONFIG = 78


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(getattr(args, "config", None))
    fmt = getattr(args, "log_format", None) or settings.logging.format
    logs.configure(settings.logging.level, fmt)
    return settings


async def _ingest(args: argparse.Namespace) -> int:
    from ingest import files
    from servicedesk.runtime import open_runtime

    settings = _settings(args)
    deferred = False
    async with open_runtime(settings) as runtime:
        for argument in args.mail:
            for name, source in files.expand(argument):
                try:
                    raw = files.read(name)
                except OSError as exc:
                    print(json.dumps({"file": name, "action": "error", "ticket": None,
                                      "reason": f"cannot read: {exc.strerror}"}), flush=True)  # fmt: skip
                    deferred = True
                    continue
                outcome = await runtime.pipeline.process(raw, source)
                if outcome.action.acknowledged and args.mark_done:
                    files.mark_done(name)
                deferred = deferred or not outcome.action.acknowledged
                record = {"file": name, "action": outcome.action.value, "ticket": outcome.ticket,
                          "reason": outcome.reason}  # fmt: skip
                print(json.dumps(record, ensure_ascii=False), flush=True)
    return EX_TEMPFAIL if deferred else 0


async def _db_upgrade(args: argparse.Namespace) -> int:
    from store import migrate
    from store.db import create_engine

    settings = _settings(args)
    engine = create_engine(settings.database.url)
    try:
        await migrate.upgrade(engine, args.revision)
        print(f"database at revision {await migrate.current_revision(engine)}")
    finally:
        await engine.dispose()
    return 0


async def _demo(args: argparse.Namespace) -> int:
    from servicedesk.demo import run_demo

    settings = load_settings(args.config)
    # The demo prints its own table; only problems belong on the console.
    logs.configure("warning", args.log_format or "console")
    return await run_demo(settings)


async def _run(args: argparse.Namespace) -> int:
    # Caught before the slow part of start-up (imports, migrations, workers):
    # SIGTERM then means "do not start" and exit 0, not death by signal with
    # a migration half-way. Once the daemon runs, its own handlers take over.
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    from servicedesk.daemon import PARTS, Daemon
    from servicedesk.runtime import open_runtime, settle_heap

    settings = _settings(args)
    parts = tuple(args.only) if args.only else PARTS
    structlog.get_logger("servicedesk").info("daemon.starting", parts=list(parts), once=args.once)
    async with open_runtime(settings) as runtime:
        daemon = Daemon(runtime, parts, stop=stop)
        if stop.is_set():
            return 0  # asked to stop while starting: nothing was taken yet
        settle_heap()
        if args.once:
            handled = await daemon.drain_once()
            print(json.dumps({"handled": handled}))
            return 0
        return await daemon.run()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="servicedesk", description=__doc__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", help="TOML config file (default: ./servicedesk.toml if present)"
    )
    common.add_argument("--log-format", choices=("json", "console"), help="override logging.format")
    sub = parser.add_subparsers(dest="command", required=True)

    ingest = sub.add_parser(
        "ingest", parents=[common], help="turn mail files (or - for stdin) into tickets"
    )
    ingest.add_argument("mail", nargs="+", help="files, folders, Maildirs, or - for stdin")
    ingest.add_argument(
        "--mark-done", action="store_true", help="move handled Maildir mail from new/ to cur/"
    )
    ingest.set_defaults(handler=_ingest)

    run = sub.add_parser("run", parents=[common], help="the daemon: IMAP intake, outbox, web, jobs")
    run.add_argument("--once", action="store_true", help="drain mailboxes and outbox, then exit 0")
    run.add_argument(
        "--only", action="append", choices=("ingest", "notify", "web"),
        help="run only this part (repeatable), to scale parts apart",
    )  # fmt: skip
    run.set_defaults(handler=_run)

    demo = sub.add_parser(
        "demo", parents=[common], help="ingest the bundled sample mails and show the tickets"
    )
    demo.set_defaults(handler=_demo)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_sub.add_parser("upgrade", parents=[common], help="apply Alembic migrations")
    upgrade.add_argument("revision", nargs="?", default="head")
    upgrade.set_defaults(handler=_db_upgrade)

    from servicedesk import quarantine_cli, rules_cli, ticket_cli

    rules_cli.add_parsers(sub)
    quarantine_cli.add_parsers(sub, common)
    ticket_cli.add_parsers(sub, parents=[common])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.handler(args)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
        return int(result)
    except ServiceDeskError as exc:
        print(f"servicedesk: {exc}", file=sys.stderr)
        return EX_CONFIG
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # Imported here: the database layer is the slow part of start-up, and
        # `run` installs its signal handlers before it (see _run).
        from ingest.pipeline import TRANSIENT

        if not isinstance(exc, TRANSIENT):
            raise
        # The database or disk is away: an MTA piping to us must retry later.
        print(f"servicedesk: temporary failure, try again later: {exc}", file=sys.stderr)
        return EX_TEMPFAIL


if __name__ == "__main__":
    sys.exit(main())
