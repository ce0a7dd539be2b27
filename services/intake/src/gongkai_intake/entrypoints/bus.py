"""The same commands on NATS request subjects, for systems that prefer the bus.

``gk.cmd.intake.<command>`` (core NATS request/reply, not in the stream). The request carries
the same JSON body as the HTTP route, with the route's path parameter (``post_id``,
``publication_id``, ``person_id``, ``unit``) as a body field, and the headers
``Authorization: Bearer <token>`` and ``Idempotency-Key``. The reply is the HTTP answer's body
— the result, or the RFC 9457 problem — with its status in the ``Gk-Status`` header.

No ``from __future__ import annotations``: faststream reads each handler's signature at runtime,
and the body annotation (built per command, for the AsyncAPI document) is a local.
"""

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any

import structlog
from faststream.nats import NatsBroker, NatsMessage, NatsResponse
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import BaseModel, ValidationError, WithJsonSchema

from gongkai import subjects
from gongkai.directory import Directory, Principal, authenticate_header
from gongkai.identifiers import SUBJECT_SAFE_ID, InvalidIdentifier, is_token
from gongkai.runtime.http import Problem, infrastructure_problem, invalid_identifier
from gongkai_intake.entrypoints.api import IntakeApp

QUEUE = "intake"  # replicas share the requests
#: Requests handled at once per process; each mostly waits on a JetStream ack.
MAX_WORKERS = 64

log = structlog.get_logger("gongkai.intake.bus")


def invalid(exc: ValidationError) -> Problem:
    """The problem body FastAPI's handler would give for the same body."""
    errors = [
        {"field": ".".join(str(x) for x in e["loc"]) or "body", "detail": e["msg"]}
        for e in exc.errors(include_url=False)
    ]
    p = Problem(
        422,
        "Invalid request",
        "; ".join(f"{e['field']}: {e['detail']}" for e in errors)[:2000],
        field=errors[0]["field"] if errors else None,
    )
    p.extra = {"errors": errors}
    return p


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


async def _authenticate(directory: Directory, headers: Mapping[str, str]) -> Principal:
    return await authenticate_header(directory, _header(headers, "Authorization"))


def _parse(
    data: bytes, model: type[BaseModel], path: tuple[str, ...]
) -> tuple[dict[str, str], BaseModel]:
    try:
        raw = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Problem(400, "Invalid JSON", "the request body is not JSON", field="body") from None
    if not isinstance(raw, dict):
        raise Problem(422, "Invalid request", "the request body must be an object", field="body")
    params: dict[str, str] = {}
    for name in path:
        value = raw.pop(name, None)
        if not isinstance(value, str):
            raise Problem(422, "Invalid request", f"{name} is required (a string)", field=name)
        if not is_token(value):
            raise invalid_identifier(name, value)
        params[name] = value
    try:
        return params, model.model_validate(raw)
    except ValidationError as exc:
        raise invalid(exc) from None


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with its ``$defs`` written in place (faststream cannot embed references)."""
    defs = schema.pop("$defs", {})

    def walk(x: Any) -> Any:
        if isinstance(x, dict):
            ref = x.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return walk(dict(defs[ref.rsplit("/", 1)[1]]))
            return {k: walk(v) for k, v in x.items()}
        if isinstance(x, list):
            return [walk(v) for v in x]
        return x

    result: dict[str, Any] = walk(schema)
    return result


def request_schema(model: type[BaseModel], path: tuple[str, ...]) -> dict[str, Any]:
    """The bus body: the HTTP body plus the route's path parameters as fields."""
    schema = _inline(model.model_json_schema())
    props = {name: {"type": "string", "pattern": SUBJECT_SAFE_ID} for name in path}
    schema["properties"] = {**props, **schema.get("properties", {})}
    schema["required"] = [*path, *schema.get("required", [])]
    return schema


#: One command's answer to a request's body and headers: the reply's body and headers.
Answerer = Callable[[bytes, Mapping[str, str]], Awaitable[tuple[bytes, dict[str, str]]]]


def reply(
    status: int, body: dict[str, Any], replayed: bool = False
) -> tuple[bytes, dict[str, str]]:
    headers = {"Gk-Status": str(status)}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return json.dumps(body, ensure_ascii=False).encode(), headers


def answerer(
    command: str,
    model: type[BaseModel],
    path: tuple[str, ...],
    app: Callable[[], IntakeApp],
    directory: Callable[[], Directory],
) -> Answerer:
    """The command's answer to one request: the HTTP answer's body, or the problem."""
    subject = subjects.command_subject("intake", command)

    async def answer(data: bytes, given: Mapping[str, str]) -> tuple[bytes, dict[str, str]]:
        headers = dict(given)
        try:
            intake = app()
            principal = await _authenticate(directory(), headers)
            params, request = _parse(data, model, path)
            result = await intake.execute(
                command, principal, _header(headers, "Idempotency-Key"), params, request
            )
            return reply(result.status, result.body, result.replayed)
        except Problem as p:
            return reply(p.status, p.body(subject))
        except InvalidIdentifier as exc:  # an id that got past the checks above to a subject
            return reply(422, invalid_identifier(exc.what, exc.value).body(subject))
        except Exception as exc:  # noqa: BLE001 - a requester must always get an answer
            known = infrastructure_problem(exc)
            if known is not None:
                return reply(known.status, known.body(subject))
            log.error("command_failed", command=command, error=type(exc).__name__)
            body = Problem(500, "Internal error", "the command was not recorded").body(subject)
            return reply(500, body)

    return answer


def documented(
    command: str,
    model: type[BaseModel],
    path: tuple[str, ...],
    answer: Answerer,
    message: Callable[[], NatsMessage],
) -> Callable[[Any], Awaitable[NatsResponse]]:
    """The command as a faststream subscriber's handler: what the AsyncAPI document describes
    (its body schema). ``CommandServer`` serves the requests; this handler answers the same
    way wherever a broker is started with it."""
    # Any: the body is parsed by ``answer``, after authentication, so an anonymous caller
    # learns nothing about its body; the schema only documents the request in AsyncAPI.
    Body = Annotated[Any, WithJsonSchema(request_schema(model, path))]

    # The message is taken from the broker's context, not as a ``NatsMessage`` parameter:
    # fast_depends resolves such a parameter in a worker thread, a thread hop per request.
    async def handle(body: Body) -> NatsResponse:
        raw = message().raw_message
        data, headers = await answer(raw.data, raw.headers or {})
        return NatsResponse(data, headers=headers)

    handle.__name__ = f"intake_{command}"
    return handle


class CommandServer:
    """Answers ``gk.cmd.intake.<command>`` on the service's own NATS connection.

    Not through faststream's subscribers: its pipeline per message (a task group, a
    semaphore, context scopes, middlewares, a publisher for the reply) cost about a fifth of
    a request's CPU under py-spy, and its broker is a second connection whose writes are not
    shared with the appends. nats-py runs one subscription's callbacks one after another, so
    the callback only starts a task per request; at most ``limit`` run at once (each mostly
    waits on a JetStream ack), the rest wait in the subscription's queue.
    """

    def __init__(self, answers: Mapping[str, Answerer], limit: int = MAX_WORKERS) -> None:
        self.answers = dict(answers)
        self.limit = limit
        self._nc: Client | None = None
        self._slots: asyncio.Semaphore | None = None
        self._subs: list[Subscription] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, nc: Client) -> None:
        self._nc = nc
        self._slots = asyncio.Semaphore(self.limit)
        for command, answer in self.answers.items():
            sub = await nc.subscribe(
                subjects.command_subject("intake", command),
                queue=QUEUE,
                cb=self._dispatcher(answer),
            )
            self._subs.append(sub)
        # A round trip: once started, the server has every subscription (a request sent the
        # moment the service is ready would otherwise meet no responders).
        await nc.flush()

    def _dispatcher(self, answer: Answerer) -> Callable[[Msg], Awaitable[None]]:
        async def dispatch(msg: Msg) -> None:
            assert self._slots is not None
            await self._slots.acquire()
            task = asyncio.create_task(self._serve(answer, msg))
            self._tasks.add(task)
            task.add_done_callback(self._finished)

        return dispatch

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._slots is not None:
            self._slots.release()

    async def _serve(self, answer: Answerer, msg: Msg) -> None:
        data, headers = await answer(msg.data, msg.headers or {})
        if not msg.reply or self._nc is None:
            return  # a publish, not a request: nobody waits for the answer
        try:
            await self._nc.publish(msg.reply, data, headers=headers)
        except Exception as exc:  # noqa: BLE001 - the connection went; the requester retries
            log.warning("reply_failed", subject=msg.subject, error=type(exc).__name__)

    async def stop(self, within: float = 10.0) -> None:
        """Take no more requests, answer those received (up to ``within`` seconds)."""
        subs, self._subs = self._subs, []
        for sub in subs:
            with contextlib.suppress(Exception):  # a closed connection has nothing to drain
                await sub.drain()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=within)


def install_bus(
    broker: NatsBroker, app: Callable[[], IntakeApp], directory: Callable[[], Directory]
) -> CommandServer:
    """The commands' server, and each command declared on ``broker`` for AsyncAPI."""

    def message() -> NatsMessage:
        msg: NatsMessage = broker.context.get_local("message")
        return msg

    answers: dict[str, Answerer] = {}
    for command, (model, path) in IntakeApp.COMMANDS.items():
        answers[command] = answerer(command, model, path, app, directory)
        fields = ", ".join([*path, *model.model_fields])
        broker.subscriber(
            subjects.command_subject("intake", command),
            queue=QUEUE,
            max_workers=MAX_WORKERS,
            title=f"intake command {command}",
            description=(
                f"Request/reply (core NATS). Body: JSON object with {fields}. Headers: "
                "Authorization: Bearer <token>, Idempotency-Key. Reply: the HTTP answer body "
                "or an RFC 9457 problem; status in the Gk-Status header."
            ),
        )(documented(command, model, path, answers[command], message))
    return CommandServer(answers)
