"""A minimal keep-alive HTTP/1.1 client for the load generator.

The load generator shares the machine's two cores with the four services it measures; httpx's
connection pool costs more CPU per request than the services do at a few dozen connections
(see bench/bench_intake.py), so each session keeps one raw connection per service instead.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

#: Tries of one request: a connection the server had closed, or a 503 with Retry-After.
RETRIES = 3
RETRY_AFTER_S = 1.0


class ConnectionLost(Exception):
    """The server closed the connection before answering (e.g. its keep-alive timeout)."""


class Connection:
    """One keep-alive connection to one service; reconnects when the server closed it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._rw: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: Any = None
    ) -> tuple[int, Any]:
        """Send one request; its status and decoded JSON answer (None when empty).

        A request on a connection the server had closed (uvicorn drops idle ones after 5 s)
        is sent once more on a new connection: writes carry an Idempotency-Key, so a repeat
        records nothing twice.
        """
        for attempt in range(1, RETRIES + 1):
            try:
                status, answer = await self._once(method, path, headers, body)
            except (ConnectionLost, ConnectionError):
                self.close()
                if attempt == RETRIES:
                    raise
                continue
            if status != 503 or attempt == RETRIES:
                return status, answer
            # "Read model unavailable, retry shortly" (Retry-After: 1): the API's answer to a
            # database busy for a moment. A client that follows the contract asks again; the
            # client's back-off, not a wait for a result.
            await asyncio.sleep(RETRY_AFTER_S)
        raise AssertionError("unreachable")

    async def _once(
        self, method: str, path: str, headers: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        if self._rw is None:
            self._rw = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self._rw
        data = b"" if body is None else json.dumps(body, ensure_ascii=False).encode()
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        ctype = "Content-Type: application/json\r\n" if body is not None else ""
        writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: bench\r\n{ctype}"
            f"Content-Length: {len(data)}\r\n{head}\r\n".encode()
            + data
        )
        status_line = await reader.readline()
        if not status_line:
            raise ConnectionLost(path)
        status = int(status_line.split()[1])
        length = 0
        close = False
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            key = name.strip().lower()
            if key == b"content-length":
                length = int(value)
            elif key == b"connection" and value.strip().lower() == b"close":
                close = True
        raw = await reader.readexactly(length)
        if close:
            self.close()
        return status, json.loads(raw) if raw else None

    def close(self) -> None:
        if self._rw is not None:
            self._rw[1].close()
            self._rw = None
