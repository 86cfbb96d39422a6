"""Mails written together behave exactly as if each were written alone, in order.

Mails are offered concurrently here (``asyncio.gather``), the way the IMAP
watcher hands over a fetched batch, so they reach the writer while it is busy
and share a transaction. Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from ingest.outcome import Action, Outcome, SourceRef
from servicedesk.runtime import Runtime, open_runtime
from store import apply, intake
from store.models import AccessToken, Event, Intake, Message, Outbox, Participant, Ticket
from tests.ingest.test_pipeline import count, make_mail


async def offer_together(runtime: Runtime, mails: list[bytes]) -> list[Outcome]:
    return await asyncio.gather(
        *(
            runtime.pipeline.process(raw, SourceRef("imap", "main", f"main:1:{i + 1}"))
            for i, raw in enumerate(mails)
        )
    )


async def test_a_burst_becomes_one_ticket_per_mail_in_few_transactions(runtime: Runtime) -> None:
    mails = [
        make_mail(message_id=f"burst{i}@eksote.fi", subject=f"Tulostin {i}") for i in range(40)
    ]
    outcomes = await offer_together(runtime, mails)
    assert [o.action for o in outcomes] == [Action.CREATED] * 40
    assert len({o.ticket for o in outcomes}) == 40
    # Grouping happened: far fewer commits than mails.
    assert runtime.pipeline.writer.groups < 40
    assert await count(runtime, Ticket) == 40
    assert await count(runtime, Message) == 40
    assert await count(runtime, Intake, Intake.action == "created") == 40
    assert await count(runtime, Event, Event.kind == "created") == 40
    assert await count(runtime, Outbox, Outbox.template == "ack_new") == 40
    assert await count(runtime, AccessToken) == 80
    async with runtime.sessions() as session:
        rows = (await session.execute(select(Ticket.id, Ticket.subject, Message.ticket_id,
                                             Message.subject).join(Message))).all()  # fmt: skip
        # Every message hangs on the ticket made from it.
        assert all(
            ticket_subject == message_subject for _, ticket_subject, _, message_subject in rows
        )
        owners = (await session.execute(select(Participant.ticket_id))).scalars().all()
        assert sorted(owners) == sorted(r[0] for r in rows)


async def test_reply_in_the_same_burst_continues_the_ticket(runtime: Runtime) -> None:
    first = make_mail(message_id="start@eksote.fi", subject="Näyttö pimeänä")
    reply = make_mail(
        message_id="reply@eksote.fi",
        subject="Re: Näyttö pimeänä",
        body="Lisätietoa: kone on HP.",
        extra="In-Reply-To: <start@eksote.fi>\r\n",
    )
    others = [make_mail(message_id=f"o{i}@eksote.fi", subject=f"Muu {i}") for i in range(5)]
    outcomes = await offer_together(runtime, [*others[:3], first, reply, *others[3:]])
    assert outcomes[3].action is Action.CREATED
    assert outcomes[4].action is Action.UPDATED
    assert outcomes[4].ticket == outcomes[3].ticket
    assert await count(runtime, Ticket) == 6


async def test_the_same_mail_twice_in_one_burst_is_one_ticket(runtime: Runtime) -> None:
    mail = make_mail(message_id="twice@eksote.fi")
    outcomes = await offer_together(runtime, [mail, make_mail(message_id="x@eksote.fi"), mail])
    # Whichever copy finished parsing first makes the ticket; the other is the duplicate.
    assert sorted([outcomes[0].action, outcomes[2].action]) == [Action.CREATED, Action.DUPLICATE]
    assert outcomes[1].action is Action.CREATED
    assert await count(runtime, Ticket) == 2


async def test_one_mail_that_breaks_the_write_costs_only_itself(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = apply.open_tickets

    async def fragile(session: Any, items: Any, policy: Any) -> Any:
        if any(item.mail.subject == "Myrkky" for item in items):
            raise ValueError("a bug that only this mail triggers")
        return await real(session, items, policy)

    monkeypatch.setattr(apply, "open_tickets", fragile)
    mails = [make_mail(message_id=f"ok{i}@eksote.fi", subject=f"Hyvä {i}") for i in range(6)]
    mails.insert(3, make_mail(message_id="bad@eksote.fi", subject="Myrkky"))
    outcomes = await offer_together(runtime, mails)
    actions = [o.action for o in outcomes]
    assert actions.count(Action.CREATED) == 6
    assert actions[3] is Action.QUARANTINED
    assert "internal error: ValueError" in outcomes[3].reason
    assert await count(runtime, Ticket) == 6
    # The bad mail is kept, with its raw bytes, for an operator to look at.
    assert await count(runtime, Intake, Intake.action == "quarantined") == 1


async def test_a_concurrent_writer_makes_the_group_fall_back_to_one_by_one(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process stored one of the mails after our dedup check: only that one is a duplicate."""
    first = await runtime.pipeline.process(
        make_mail(message_id="raced@eksote.fi"), SourceRef("file", "x")
    )
    assert first.action is Action.CREATED

    async def blind(session: Any, keys: Any, sources: Any) -> Any:
        return {}, {}  # as if the other process had not committed yet

    monkeypatch.setattr(intake, "find_many", blind)
    mails = [make_mail(message_id=f"new{i}@eksote.fi") for i in range(3)]
    mails.insert(1, make_mail(message_id="raced@eksote.fi"))
    outcomes = await offer_together(runtime, mails)
    assert [o.action for o in outcomes] == [
        Action.CREATED, Action.DUPLICATE, Action.CREATED, Action.CREATED,
    ]  # fmt: skip
    assert outcomes[1].reason == "already received (concurrent intake)"
    assert await count(runtime, Ticket) == 4


async def test_ids_continue_after_existing_rows(runtime: Runtime) -> None:
    """Reserved ids start above what is there, on both backends (sequences / max)."""
    one = await runtime.pipeline.process(
        make_mail(message_id="a1@eksote.fi"), SourceRef("file", "x")
    )
    burst = await offer_together(
        runtime, [make_mail(message_id=f"b{i}@eksote.fi") for i in range(5)]
    )
    numbers = sorted([one.ticket or "", *(o.ticket or "" for o in burst)])
    assert numbers == [f"SD-{n:06d}" for n in range(1, 7)]


async def test_two_processes_writing_bursts_at_once_never_share_an_id(
    runtime: Runtime, db_url: str, make_settings: Any
) -> None:
    """Reserved ids come from sequences (PostgreSQL) or under the write lock (SQLite)."""
    async with open_runtime(make_settings(db_url)) as other:

        async def burst(rt: Runtime, name: str) -> list[Outcome]:
            return await asyncio.gather(*(
                rt.pipeline.process(make_mail(message_id=f"{name}{i}@eksote.fi"),
                                    SourceRef("imap", name, f"{name}:1:{i}"))
                for i in range(20)
            ))  # fmt: skip

        first, second = await asyncio.gather(burst(runtime, "a"), burst(other, "b"))
    outcomes = first + second
    assert [o.action for o in outcomes] == [Action.CREATED] * 40
    assert len({o.ticket for o in outcomes}) == 40
    assert await count(runtime, Ticket) == 40
    assert await count(runtime, Message) == 40
