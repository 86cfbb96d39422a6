"""Agent bearer tokens: shown once at creation, stored only as a SHA-256.

A leaked database must not hand out working API credentials, so the clear
token exists only in the output of ``servicedesk agent add``; the API hashes
what a client presents and looks the hash up.  The tokens carry 256 random
bits, so a plain hash (no salt, no slow KDF) is enough: there is nothing to
brute-force.
"""

from __future__ import annotations

import re
import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import Agent
from store.tokens import token_hash

TOKEN_PREFIX = "sda_"  # recognisable in a leaked log or a secret scanner
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")


class AgentError(ValueError):
    """The agent cannot be added as asked (bad or taken name)."""


def new_agent_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


async def add_agent(session: AsyncSession, name: str, *, rotate: bool = False) -> str:
    """Create agent ``name`` (or give an existing one a new token) and return the clear token.

    Rotating replaces the stored hash, so the previous token stops working at
    once; that is also how a lost token is "recovered".
    """
    if not NAME_PATTERN.match(name):
        raise AgentError(
            f"agent name {name!r}: use letters, digits and . _ @ - (at most 128 characters)"
        )
    token = new_agent_token()
    existing = await session.scalar(select(Agent).where(Agent.name == name))
    if existing is not None:
        if not rotate:
            raise AgentError(f"agent {name!r} exists; use --rotate to issue a new token")
        existing.token_hash = token_hash(token)
        existing.disabled = False
    else:
        session.add(Agent(name=name, token_hash=token_hash(token)))
    await session.flush()
    return token


async def disable_agent(session: AsyncSession, name: str) -> bool:
    agent = await session.scalar(select(Agent).where(Agent.name == name))
    if agent is None:
        return False
    agent.disabled = True
    await session.flush()
    return True


async def authenticate(session: AsyncSession, token: str) -> Agent | None:
    """The enabled agent holding ``token``, or None.

    Tokens without our prefix or of absurd length are refused before any
    query so a flood of junk headers costs nothing.
    """
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    agent = await session.scalar(select(Agent).where(Agent.token_hash == token_hash(token)))
    if agent is None or agent.disabled:
        return None
    return agent
