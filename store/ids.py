"""Primary keys reserved for a group of rows before any of them is inserted.

With every id known up front, a whole group of mails (tickets, their
messages, events, tokens...) is linked in memory and inserted with one
multi-row statement per table, instead of one INSERT and one round trip per
row to learn each new id. PostgreSQL hands out ids from the tables' own
sequences, so concurrent writers never collide. SQLite has no sequences; it
counts on from the highest id, which is safe because the caller holds the
database's single write lock (``transaction(..., writer=True)``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import Base


async def reserve(session: AsyncSession, counts: Mapping[str, int]) -> dict[str, Iterator[int]]:
    """``{table: n}`` -> ``{table: iterator of n fresh ids, ascending}``; one round trip."""
    wanted = {name: n for name, n in counts.items() if n > 0}
    for name in wanted:
        if name not in Base.metadata.tables:
            raise KeyError(f"unknown table {name!r}")
    if not wanted:
        return {name: iter(()) for name in counts}
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    found: dict[str, list[int]] = {name: [] for name in counts}
    if dialect == "postgresql":
        parts = [
            f"SELECT '{name}' AS t, nextval(pg_get_serial_sequence('{name}', 'id')) AS id "
            f"FROM generate_series(1, {n})"
            for name, n in wanted.items()
        ]
        for table, value in (await session.execute(text(" UNION ALL ".join(parts)))).all():
            found[table].append(int(value))
        for values in found.values():
            values.sort()
    else:
        columns = ", ".join(
            f"(SELECT coalesce(max(id), 0) FROM {name}) AS {name}" for name in wanted
        )
        row = (await session.execute(text(f"SELECT {columns}"))).one()
        for (name, n), top in zip(wanted.items(), row, strict=True):
            found[name] = list(range(int(top) + 1, int(top) + 1 + n))
    return {name: iter(values) for name, values in found.items()}
