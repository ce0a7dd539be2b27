"""The console's session cookie and its CSRF token.

Inspectors sign in with the bearer token the API takes. The cookie carries that token only
encrypted and authenticated (Fernet: AES-CBC with an HMAC-SHA256, from ``cryptography``, which
the platform already signs its events with), under a key kept in the data directory, so a
restart keeps people signed in and nobody can read or forge a session. Every request with a
session authenticates its token again through the directory, so a token revoked or expired
anywhere ends the session at once.

Every session, signed in or not, has a random CSRF token; every form posts it back and a POST
whose token does not match its cookie's is refused (403). Signing in starts a new session (a
new CSRF token): a token planted before sign-in is worth nothing after it.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from fastapi import Request, Response

COOKIE = "gk_console"
#: How long a session lasts from sign-in, whatever happens in between (a workday and then some).
MAX_AGE_S = 12 * 3600
KEY_FILE = "console-session.key"


@dataclass(frozen=True)
class Session:
    csrf: str
    #: The bearer token signed in with; None before sign-in.
    token: str | None = None
    issued: int = 0


def load_key(data_dir: Path | None) -> bytes:
    """The data directory's session key, made on first use; a key of this process's own when
    the directory cannot hold one (sessions then end with the process)."""
    if data_dir is None:
        return Fernet.generate_key()
    path = data_dir / KEY_FILE
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two processes starting on one data directory agree on the first key written.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_bytes().strip()
        with contextlib.suppress(ValueError):
            Fernet(key)
            return key
        return Fernet.generate_key()
    except OSError:
        return Fernet.generate_key()
    key = Fernet.generate_key()
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key


class Sessions:
    """Sessions under the key ``key()`` gives, asked for at the first request, not when the
    service is built: building one must leave its data directory alone (tests and tools build
    services on directories they make afterwards)."""

    def __init__(self, key: Callable[[], bytes], max_age_s: int = MAX_AGE_S) -> None:
        self._key = key
        self._f: Fernet | None = None
        self.max_age_s = max_age_s

    @property
    def _fernet(self) -> Fernet:
        if self._f is None:
            self._f = Fernet(self._key())
        return self._f

    def read(self, request: Request) -> Session | None:
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            data = json.loads(self._fernet.decrypt(raw.encode(), ttl=self.max_age_s))
            return Session(str(data["csrf"]), data.get("tok"), int(data.get("iat", 0)))
        except (InvalidToken, ValueError, KeyError, TypeError):
            return None

    def new(self, token: str | None = None) -> Session:
        return Session(secrets.token_urlsafe(24), token, int(time.time()))

    def write(self, request: Request, response: Response, session: Session) -> None:
        payload = {"csrf": session.csrf, "iat": session.issued}
        if session.token is not None:
            payload["tok"] = session.token
        value = self._fernet.encrypt(json.dumps(payload).encode()).decode()
        response.set_cookie(
            COOKIE,
            value,
            max_age=self.max_age_s,
            path="/console",
            httponly=True,
            samesite="strict",
            # Behind TLS (directly, or a proxy uvicorn trusts) the cookie is never sent in clear.
            secure=request.url.scheme == "https",
        )

    def clear(self, request: Request, response: Response) -> None:
        response.delete_cookie(
            COOKIE, path="/console", httponly=True, samesite="strict",
            secure=request.url.scheme == "https",
        )


def csrf_ok(session: Session | None, sent: str | None) -> bool:
    """The form's token is its session's (compared in constant time)."""
    return (
        session is not None
        and bool(sent)
        and hmac.compare_digest(session.csrf.encode(), (sent or "").encode())
    )
