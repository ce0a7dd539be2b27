"""A direct way through a command route for a well-formed request, beside FastAPI's own.

FastAPI's handler solves a route's dependencies on every request: it parses the query string
and cookies no command has, validates each parameter through its own machinery and builds the
dependency cache - about a sixth of a submission's CPU (intake) and a twentieth of a
signature's (review) under py-spy. A JSON object body with valid path ids takes the steps
FastAPI takes, in its order (the body's JSON, the caller, then the parameters), with the same
model. Anything else - another content type, no or invalid JSON, a bad id, a body the model
refuses - goes to FastAPI's own handler, so every refusal is the one FastAPI gives, and the
route is FastAPI's (the same OpenAPI operation, the same answers).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

from gongkai.directory import Principal
from gongkai.identifiers import is_token

#: A command's run once its request is taken apart: (the request, the caller, its
#: Idempotency-Key, the path ids, the body).
Run = Callable[[Request, Principal, str | None, dict[str, str], BaseModel], Awaitable[Response]]


def direct_route_class(
    ids: Sequence[str],
    model: type[BaseModel],
    authenticate: Callable[[Request], Awaitable[Principal]],
    run: Run,
) -> type[APIRoute]:
    """The route's class (``route_class_override``): FastAPI's route, whose handler hands a
    well-formed request to ``run`` itself and anything else to FastAPI's."""

    class DirectAPIRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            fastapi_handler = super().get_route_handler()

            async def handler(request: Request) -> Response:
                if request.headers.get("content-type") != "application/json":
                    return await fastapi_handler(request)
                try:
                    # orjson: a tenth of json's cost (2 % of a submission). What it refuses and
                    # json would take (NaN, an integer beyond 64 bits, a lone surrogate's
                    # escape) goes to FastAPI's handler, which reads it with json as before.
                    data = orjson.loads(await request.body())
                except Exception:  # noqa: BLE001 - FastAPI's handler gives the refusal
                    # (a body that could not be read: FastAPI's read fails too, its 400)
                    return await fastapi_handler(request)
                given = request.path_params
                if not isinstance(data, dict) or not all(is_token(given.get(n)) for n in ids):
                    return await fastapi_handler(request)
                caller = await authenticate(request)
                try:
                    body = model.model_validate(data)
                except ValidationError:
                    return await fastapi_handler(request)
                key = request.headers.get("idempotency-key")
                return await run(request, caller, key, {n: given[n] for n in ids}, body)

            return handler

    return DirectAPIRoute
