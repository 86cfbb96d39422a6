"""Tracking-link and reply tokens: unguessable, and never stored in the clear.

A token is an HMAC of a random 128-bit nonce under the server's secret key.
The database keeps the nonce and a SHA-256 of the token: a leaked database
alone yields no working link, yet the outbox worker can rebuild the link for a
mail long after the ticket was created.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from pathlib import Path

NONCE_BYTES = 16


def new_nonce() -> str:
    return secrets.token_hex(NONCE_BYTES)


def token_for(secret_key: bytes, purpose: str, nonce: str) -> str:
    """160 bits, lower-case base32: survives mail systems that fold the case of addresses."""
    digest = hmac.digest(secret_key, f"{purpose}:{nonce}".encode(), "sha256")
    return base64.b32encode(digest[:20]).decode("ascii").lower()


def token_hash(token: str) -> str:
    """Tokens are case-insensitive (base32), so a case-folded copy still matches."""
    token = token.lower()
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def load_or_create_key(configured: str, key_file: str, data_dir: Path) -> bytes:
    """The configured key, or one generated once into the data folder (mode 0600)."""
    if configured:
        return configured.encode()
    path = Path(key_file) if key_file else data_dir / "secret.key"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with path.open("xb") as handle:
                path.chmod(0o600)
                handle.write(secrets.token_hex(32).encode())
        except FileExistsError:
            pass  # another process created it first; use theirs
    return path.read_bytes().strip()
