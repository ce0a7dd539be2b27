"""What a process checks before it starts, kept apart from the host so a command-line tool can
ask "is NATS there?" without importing the web stack, the database layer and faststream that
``gongkai.runtime.host`` needs to run services (half a second of every tool's start)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import nats

from gongkai.trust.credentials import CredentialsError, NatsAuth


class StartupError(RuntimeError):
    """A problem that stops the platform from starting; printed as one line."""


async def check_nats(
    url: str, user: str | None = None, password: str | None = None, *,
    auth: NatsAuth | None = None,
) -> None:
    """Connect once and close: a clear one-line ``StartupError`` if NATS is not usable."""
    auth = auth or NatsAuth(user=user, password=password)
    parsed = urlsplit(url if "://" in url else f"nats://{url}")
    try:
        host, port = parsed.hostname or "127.0.0.1", parsed.port or 4222
    except ValueError:
        raise StartupError(f"not a NATS URL: {url}") from None
    try:
        # nats-py retries a refused first connect quietly; ask the socket first for a clear answer.
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 3)
        writer.close()
    except (OSError, TimeoutError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or "no answer"
        raise StartupError(f"cannot connect to NATS at {url}: {reason}") from None

    async def quiet(_exc: Exception) -> None:
        return None  # the failure is reported once, below, not as nats-py tracebacks

    try:
        options = auth.options()
    except CredentialsError as exc:
        raise StartupError(str(exc)) from None
    try:
        nc = await asyncio.wait_for(
            nats.connect(
                url,
                connect_timeout=2,
                allow_reconnect=False,
                max_reconnect_attempts=0,
                error_cb=quiet,
                **options,
            ),
            5,
        )
    except TimeoutError:
        raise StartupError(f"cannot connect to NATS at {url}: no answer within 5 s") from None
    except Exception as exc:  # noqa: BLE001 - any failure is reported as one line
        reason = str(exc) or type(exc).__name__
        raise StartupError(f"cannot connect to NATS at {url}: {reason}") from None
    await nc.close()
