"""Bearer tokens as the directory and the operator's tools make and show them.

Apart from ``gongkai.directory`` (a SQL projection, and FastAPI for the request it
authenticates) so ``gongkai people token`` can issue one without importing either. Tokens are
random 256-bit strings; only their sha256 is ever recorded or stored.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

TOKEN_PREFIX = "gk_"  # noqa: S105 - a marker, not a secret


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_hint(token: str) -> str:
    """The part of a token shown in lists and on revocation: its last four characters."""
    return token[-4:]


@dataclass(frozen=True)
class TokenView:
    """A live token as lists show it: never the token, never its full hash."""

    hint: str
    issued_at: datetime
    expires_at: datetime
