"""HTTP request metrics: the series ``prometheus_fastapi_instrumentator`` writes, for less.

The series, their labels, help texts and buckets are the instrumentator's default ones (its
``metrics.default``, as ``make_app`` configured it), which the recording rules, the dashboard,
the alerts and the tests read:

- ``gongkai_http_requests_total`` (method, status, handler),
- ``gongkai_http_request_size_bytes`` and ``gongkai_http_response_size_bytes`` (handler), the
  Content-Length headers,
- ``gongkai_http_request_duration_highr_seconds`` (no labels, many buckets),
- ``gongkai_http_request_duration_seconds`` (method, handler; the buckets ``make_app`` gives).

The handler is the route's template, status codes ungrouped; a request no route takes is
``none``; the handlers matching an excluded pattern are not counted. The instrumentator's
middleware matched every request against the routes a second time for its label, built a
request, a response and an info object and gathered an empty list of coroutines: about 7 % of
a submission's CPU (intake, py-spy). Here the label is the route the router chose, read from
the scope once the app has answered, and each label set's children are kept.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, Summary
from prometheus_fastapi_instrumentator import routing
from starlette.requests import Request
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The instrumentator's default buckets for the label-free latency histogram.
HIGHR_BUCKETS: tuple[float, ...] = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 7.5,
    10, 30, 60,
)


class HttpMetrics:
    """The five series of one app, in a registry of its own (``make_app``)."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        namespace: str,
        lowr_buckets: Sequence[float],
        excluded: Sequence[str] = (),
    ) -> None:
        self.registry = registry
        self.excluded = [re.compile(p) for p in excluded]
        # The instrumentator's names and help texts, word for word: /metrics shows the help.
        self.total = Counter(
            "http_requests_total",
            "Total number of requests by method, status and handler.",
            ("method", "status", "handler"),
            namespace=namespace,
            registry=registry,
        )
        self.in_size = Summary(
            "http_request_size_bytes",
            "Content length of incoming requests by handler. "
            "Only value of header is respected. Otherwise ignored. "
            "No percentile calculated. ",
            ("handler",),
            namespace=namespace,
            registry=registry,
        )
        self.out_size = Summary(
            "http_response_size_bytes",
            "Content length of outgoing responses by handler. "
            "Only value of header is respected. Otherwise ignored. "
            "No percentile calculated. ",
            ("handler",),
            namespace=namespace,
            registry=registry,
        )
        self.highr = Histogram(
            "http_request_duration_highr_seconds",
            "Latency with many buckets but no API specific labels. "
            "Made for more accurate percentile calculations. ",
            buckets=HIGHR_BUCKETS,
            namespace=namespace,
            registry=registry,
        )
        self.lowr = Histogram(
            "http_request_duration_seconds",
            "Latency with only few buckets by handler. "
            "Made to be only used if aggregation by handler is important. ",
            ("method", "handler"),
            buckets=lowr_buckets,
            namespace=namespace,
            registry=registry,
        )
        # Each label set's children, by (method, status, handler): prometheus_client's
        # ``labels`` validates and locks on every call. Handlers are route templates or
        # ``none``, so the keys are bounded by the routes, methods and statuses.
        self._children: dict[tuple[str, str, str], tuple[Any, Any, Any, Any]] = {}
        self._skip: dict[str, bool] = {}

    def is_excluded(self, handler: str) -> bool:
        """Whether a handler is left out (a pattern found in it, as the instrumentator did)."""
        skip = self._skip.get(handler)
        if skip is None:
            skip = any(p.search(handler) for p in self.excluded)
            if len(self._skip) < 1024:  # untemplated paths are the client's: keep a bound
                self._skip[handler] = skip
        return skip

    def observe(
        self,
        method: str,
        status: str,
        handler: str,
        duration: float,
        request_size: int,
        response_size: int,
    ) -> None:
        key = (method, status, handler)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.total.labels(method, status, handler),
                self.in_size.labels(handler),
                self.out_size.labels(handler),
                self.lowr.labels(method, handler),
            )
        total, in_size, out_size, lowr = children
        total.inc()
        in_size.observe(request_size)
        out_size.observe(response_size)
        self.highr.observe(duration)
        lowr.observe(duration)


def _content_length(headers: Any, *, any_case: bool = False) -> int:
    """The first Content-Length header's value, else 0. A request's names are matched as the
    server gave them (lower case, as Starlette's ``Headers`` matches them); a response's in any
    case (the instrumentator read them through a ``Response``, which lowers them)."""
    for name, value in headers:
        if (name.lower() if any_case else name) == b"content-length":
            return int(value)
    return 0


class HttpMetricsMiddleware:
    """Pure ASGI middleware counting each HTTP request into ``HttpMetrics``.

    The handler label is the template of the route Starlette's router picked (it leaves it in
    ``scope["route"]``): the same route the instrumentator's second matching found, first full
    match else first partial, when the route is one of the app's own. Anything else - no route
    (404, a trailing-slash redirect), a route inside a mount or an included router - is named
    by the instrumentator's own matching, on the scope as it came in. A request that raised
    counts as 500 unless its answer had started.
    """

    def __init__(self, app: ASGIApp, *, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics
        self._routes: list[Any] | None = None
        self._own: set[int] = set()
        self._size = -1

    def _own_route(self, came_in: Scope, route: Any) -> bool:
        routes: list[Any] | None = getattr(came_in.get("app"), "routes", None)
        if routes is None:
            return False
        if routes is not self._routes or len(routes) != self._size:
            self._routes, self._size = routes, len(routes)
            # Only a flat list of routes is matched the way the router matches: an included
            # router's entries are resolved by the instrumentator's own flattening.
            flat = not any(callable(getattr(r, "effective_route_contexts", None)) for r in routes)
            self._own = {id(r) for r in routes} if flat else set()
        return id(route) in self._own

    def _handler(self, scope: Scope, came_in: Scope) -> tuple[str, bool]:
        route = scope.get("route")
        if route is not None and self._own_route(came_in, route):
            path = getattr(route, "path", None)
            if path is not None and not (isinstance(route, Mount) and route.routes):
                return path, True
        name = routing.get_route_name(Request(came_in), should_include_root_path=False)
        return (name, True) if name else (Request(came_in).url.path, False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        came_in = dict(scope)  # the router adds to the scope; a fallback match needs it as it was
        start = time.perf_counter()
        status = 500
        response_size = 0

        async def counted(message: Message) -> None:
            nonlocal status, response_size
            if message["type"] == "http.response.start":
                status = message["status"]
                response_size = _content_length(message.get("headers", ()), any_case=True)
            await send(message)

        try:
            await self.app(scope, receive, counted)
        finally:
            handler, templated = self._handler(scope, came_in)
            if not self.metrics.is_excluded(handler):
                self.metrics.observe(
                    scope["method"],
                    str(int(status)),
                    handler if templated else "none",
                    max(time.perf_counter() - start, 0.0),
                    _content_length(scope["headers"]),
                    response_size,
                )
