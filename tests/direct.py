"""The direct way through a command route (``gongkai.runtime.direct``), as tests take it."""

from __future__ import annotations

from typing import Any

import fastapi.routing
import httpx
import pytest


async def post_both_ways(
    client: httpx.AsyncClient,
    path: str,
    data: str | bytes,
    headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[httpx.Response, httpx.Response, list[str]]:
    """POST one JSON body twice: as ``application/json``, which takes the direct way (FastAPI
    solves no dependency), then with a charset in its content type, which goes through
    FastAPI's own handler. Both must answer 201 with the same body. Returns both answers and
    the list of paths FastAPI solved dependencies for, which goes on counting for the test."""
    solved: list[str] = []
    solve = fastapi.routing.solve_dependencies

    async def counted(*args: Any, **kw: Any) -> Any:
        solved.append(kw["request"].url.path)
        return await solve(*args, **kw)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counted)
    direct = await client.post(
        path, content=data, headers={**headers, "Content-Type": "application/json"}
    )
    assert direct.status_code == 201, direct.text
    assert solved == []
    through_fastapi = await client.post(
        path,
        content=data,
        headers={**headers, "Content-Type": "application/json; charset=utf-8"},
    )
    assert solved == [path]
    assert through_fastapi.status_code == 201, through_fastapi.text
    assert through_fastapi.json() == direct.json()
    return direct, through_fastapi, solved
