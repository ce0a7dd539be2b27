"""Routes adopted by the app as they were built answer and document as FastAPI's include would."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from gongkai.runtime import service as service_module
from gongkai.runtime.clock import FixedClock
from gongkai.runtime.host import make_app
from gongkai.runtime.http import PathId, ServiceRouter, adopt_routes
from gongkai.runtime.service import ServiceContext, discover
from gongkai.runtime.settings import Settings


def _service_router() -> ServiceRouter:
    api = APIRouter(tags=["things"])

    @api.get("/things/{thing_id}")
    async def thing(thing_id: PathId, n: int = 1) -> dict[str, object]:
        """One thing, n times."""
        return {"id": thing_id, "n": n}

    pages = APIRouter(prefix="/console", include_in_schema=False)

    @pages.get("/page")
    async def page() -> dict[str, str]:
        return {"page": "yes"}

    svc = ServiceRouter()
    svc.include_router(api)
    svc.include_router(pages)
    return svc


def _app(adopt: bool) -> FastAPI:
    app = FastAPI()
    svc = _service_router()
    if adopt:
        adopt_routes(app.router, svc)
    else:
        app.include_router(svc)
    return app


async def _answers(app: FastAPI) -> list[tuple[int, str]]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        out = []
        for path in ("/things/a-1?n=3", "/things/a.b", "/things/x?n=z", "/console/page", "/page"):
            r = await c.get(path)
            out.append((r.status_code, r.text))
        return out


async def test_adopted_routes_answer_and_document_as_included_ones() -> None:
    adopted, included = _app(adopt=True), _app(adopt=False)
    assert await _answers(adopted) == await _answers(included)
    assert json.dumps(adopted.openapi()) == json.dumps(included.openapi())
    assert "/console/page" not in adopted.openapi()["paths"]


def test_adopted_routes_are_the_routes_built_once() -> None:
    inner = APIRouter(tags=["things"])

    @inner.get("/x")
    async def x() -> None:
        return None

    svc = ServiceRouter()
    svc.include_router(inner)
    app = FastAPI()
    adopt_routes(app.router, svc)
    assert inner.routes[0] in app.router.routes  # the same object, not one built again


async def test_an_include_with_options_is_fastapis() -> None:
    inner = APIRouter()

    @inner.get("/x")
    async def x() -> dict[str, int]:
        return {"x": 1}

    svc = ServiceRouter()
    svc.include_router(inner, prefix="/v1")
    app = FastAPI()
    adopt_routes(app.router, svc)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        assert (await c.get("/v1/x")).json() == {"x": 1}
        assert (await c.get("/x")).status_code == 404


def test_the_platforms_openapi_is_the_same_as_with_fastapis_include(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = ServiceContext(
        settings=Settings(data_dir=tmp_path),
        clock=FixedClock(datetime(2026, 3, 2, 1, tzinfo=UTC)),
        nats_url="nats://127.0.0.1:1",  # built, never started
    )
    adopted = make_app([build(ctx) for build in discover().values()])
    # Plain APIRouters hold FastAPI's included routers, which adopt_routes hands back to
    # FastAPI's include_router: the document as FastAPI alone would write it.
    monkeypatch.setattr(service_module, "ServiceRouter", APIRouter)
    included = make_app([build(ctx) for build in discover().values()])
    assert any(type(r).__name__ == "_IncludedRouter" for r in included.router.routes)
    assert json.dumps(adopted.openapi(), ensure_ascii=False) == json.dumps(
        included.openapi(), ensure_ascii=False
    )
