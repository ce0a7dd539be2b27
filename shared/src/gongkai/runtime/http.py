"""HTTP helpers shared by the services: RFC 9457 problem bodies, auth header parsing."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import structlog
from fastapi import APIRouter, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from nats.errors import Error as NatsError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from gongkai.eventlog import ConcurrencyConflict, EventLogError
from gongkai.identifiers import ID_RULE, SUBJECT_SAFE_ID, InvalidIdentifier
from gongkai.refusal import Refusal

log = structlog.get_logger("gongkai.http")
#: Seconds a client should wait before retrying when the log could not take a write: about
#: the time a JetStream leader election takes.
RETRY_AFTER_S = 2

PROBLEM = "application/problem+json"

#: An identifier in a path or a query: the whole value must match (pydantic checks with Rust
#: regex, where ``$`` is the end of the text), else 422 naming the parameter - so an id that
#: cannot be a subject token never reaches NATS, and a filter never silently matches nothing.
PathId = Annotated[str, Path(pattern=SUBJECT_SAFE_ID, description=ID_RULE)]
QueryId = Annotated[str | None, Query(pattern=SUBJECT_SAFE_ID, description=ID_RULE)]


#: Routes whose handler is built when they are made: adopted as they are by another router.
_BUILT_ROUTES = (APIRoute, Route, Mount, WebSocketRoute)


def adopt_routes(target: APIRouter, source: APIRouter) -> None:
    """Put ``source``'s routes into ``target`` as they are, or include ``source`` if they
    cannot be.

    FastAPI (0.165) builds a route's dependant, its parameters' pydantic adapters and its
    handler when the route is made, and again for every router it is included into: a service
    router included into the app was built twice, three times where a service includes its
    HTTP and console routers into its own. That was about 70 % of a platform's start, and the
    tests start hundreds. A route made on an ``APIRouter`` already carries that router's
    prefix, tags, dependencies, responses and ``include_in_schema``, so an include with no
    options of its own adds nothing to it but a build: the same paths, handlers and OpenAPI
    document. FastAPI's ``include_router`` stays the way for anything else (an option, a
    router with start-up or shutdown handlers, a route of a kind not known to be built). One
    difference: the app's ``dependency_overrides`` do not reach an adopted route (nothing
    here overrides a dependency; a test that wants to must include the router instead).
    """
    routes: list[BaseRoute] = list(source.routes)
    if source.on_startup or source.on_shutdown or not all(
        isinstance(r, _BUILT_ROUTES) for r in routes
    ):
        target.include_router(source)
        return
    target.routes.extend(routes)
    # Routes added behind FastAPI's back: its cache of the routes it matches is by a version
    # it bumps on every add (a private method, so looked up, not assumed).
    changed = getattr(target, "_mark_routes_changed", None)
    if callable(changed):
        changed()


class ServiceRouter(APIRouter):
    """A service's router: routers included without options are adopted, not rebuilt."""

    def include_router(self, router: APIRouter, **options: Any) -> None:  # type: ignore[override]
        if options:
            super().include_router(router, **options)
        else:
            adopt_routes(self, router)


class Problem(Exception):
    """Raise from a route: becomes an RFC 9457 problem response; nothing was recorded."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str = "",
        *,
        field: str | None = None,
        type_: str = "about:blank",
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.field = field
        self.type = type_
        self.extra = extra or {}

    def body(self, instance: str | None = None) -> dict[str, Any]:
        b: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail:
            b["detail"] = self.detail
        if self.field:
            b["field"] = self.field
            b["errors"] = [{"field": self.field, "detail": self.detail or self.title}]
        if instance:
            b["instance"] = instance
        b.update(self.extra)
        return b


class AnswerResponse(JSONResponse):
    """A command's JSON answer written by orjson: the same JSON as Starlette's ``json.dumps``
    (compact, UTF-8 unescaped, keys in the body's order) for the strings, integers, booleans,
    lists and objects the answers hold, at a tenth of the cost (1.8 % of a submission's
    samples). What orjson refuses (a key that is not a string, a lone surrogate) is written
    as Starlette writes it, which decides."""

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except orjson.JSONEncodeError:
            return super().render(content)


def problem_response(p: Problem, instance: str | None = None) -> JSONResponse:
    return JSONResponse(p.body(instance), status_code=p.status, media_type=PROBLEM)


def refusal_problem(r: Refusal) -> Problem:
    """The one mapping from a decider's refusal to an RFC 9457 problem."""
    return Problem(r.status, r.title, r.detail, field=r.field, extra=r.extra)


def invalid_identifier(field: str, value: object) -> Problem:
    """The answer to an identifier that is not one: 422, naming the field."""
    return Problem(
        422, "Invalid identifier", f"{field} must be {ID_RULE}, got {value!r}", field=field
    )


def _loc(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(x) for x in loc if x not in ("body", "query", "path", "header")]
    return ".".join(parts) or str(loc[-1] if loc else "")


def infrastructure_problem(exc: BaseException) -> Problem | None:
    """The answer for a failure of the log rather than of the request, or None.

    A lost race is a 409: another writer got to the aggregate first and the client re-reads.
    A write the log did not confirm (a leader election, NATS restarting) is a 503: whether it
    was stored is unknown, so the answer is "retry with the same Idempotency-Key", which
    records it once either way - not a 500 that reads like a bug.
    """
    if isinstance(exc, ConcurrencyConflict):
        return Problem(409, "Conflict", "the record changed meanwhile; nothing was recorded")
    if isinstance(exc, EventLogError | NatsError):
        log.warning("event log unavailable", error=str(exc)[:300] or type(exc).__name__)
        return Problem(
            503,
            "Event log unavailable",
            "the event log did not confirm the request; retry with the same Idempotency-Key",
        )
    return None


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc, request.url.path)

    @app.exception_handler(Refusal)
    async def _refusal(request: Request, exc: Refusal) -> JSONResponse:
        return problem_response(refusal_problem(exc), request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _loc(e.get("loc", ())), "detail": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        first = errors[0]["field"] if errors else None
        body = {
            "type": "about:blank",
            "title": "Invalid request",
            "status": 422,
            "detail": "; ".join(f"{e['field']}: {e['detail']}" for e in errors)[:2000],
            "field": first,
            "errors": errors,
            "instance": request.url.path,
        }
        return JSONResponse(body, status_code=422, media_type=PROBLEM)

    @app.exception_handler(InvalidIdentifier)
    async def _identifier(request: Request, exc: InvalidIdentifier) -> JSONResponse:
        # A route that let a bad id through to building a subject: still the client's error.
        return problem_response(invalid_identifier(exc.what, exc.value), request.url.path)

    @app.exception_handler(EventLogError)
    @app.exception_handler(NatsError)
    async def _infrastructure(request: Request, exc: Exception) -> JSONResponse:
        p = infrastructure_problem(exc)
        if p is None:  # not reached: both handled types map to a problem
            raise exc
        resp = problem_response(p, request.url.path)
        if p.status == 503:
            resp.headers["Retry-After"] = str(RETRY_AFTER_S)
        return resp

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        body = {
            "type": "about:blank",
            "title": str(exc.detail),
            "status": exc.status_code,
            "instance": request.url.path,
        }
        return JSONResponse(body, status_code=exc.status_code, media_type=PROBLEM)
