"""Intake's commands, one ``IntakeApp`` for both entrypoints: load state, decide, append.

HTTP routes and bus handlers are thin adapters over ``IntakeApp.execute``: both name a command,
pass the authenticated caller, the Idempotency-Key and the validated request, and get back the
same answer (status and JSON body) or a ``Problem``.

Idempotency works at two levels. The answer store returns the first answer to a retry. Below
it, the command id is derived from (caller, key, command), so the event ids of a retry are the
ids of the first attempt: JetStream's dedup, or the recorded history when the dedup window has
passed, turns a retry whose answer was never stored into the same recorded events.

The SQLite reads and writes here (tokens, unit facts, the answer store) run on the event loop:
each takes tens of microseconds on the service's local file, while a hop to a worker thread
waits for the GIL — measured, thread hops cut submissions/s several-fold under load.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import structlog
from pydantic import BaseModel
from sqlalchemy import select

from gongkai import access
from gongkai.calendar import local_date
from gongkai.decider import Decider, handle
from gongkai.directory import Directory, Principal
from gongkai.eventlog import EventLog, RecordedEvent
from gongkai.events import Actor, Envelope, EventPayload
from gongkai.events.contracts.intake import PostPublished, PostRevised, PostSubmitted
from gongkai.identifiers import is_token
from gongkai.refusal import Refusal
from gongkai.runtime.clock import Clock
from gongkai.runtime.http import Problem, invalid_identifier, refusal_problem
from gongkai.runtime.idempotency import IdempotencyStore, request_digest
from gongkai_intake.adapters.columns import ColumnChoices
from gongkai_intake.adapters.directory_log import token_reference
from gongkai_intake.domain import directory as dir_domain
from gongkai_intake.domain import posts, publications
from gongkai_intake.domain.columns import ColumnCatalog
from gongkai_intake.entrypoints import schemas
from gongkai_intake.service import IntakeService

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

SERVICE = "intake"

S = TypeVar("S")
C = TypeVar("C", bound="DataclassInstance")


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    replayed: bool = False


@dataclass(frozen=True)
class _Call:
    """What every command handler is given beside its request: the caller, the command id
    derived from their Idempotency-Key, and the ids the path named."""

    principal: Principal
    command_id: str
    params: dict[str, str]


@dataclass(frozen=True)
class Outcome:
    """What one command recorded (or had recorded on an earlier attempt)."""

    envelopes: tuple[Envelope[Any], ...]
    sequences: tuple[int, ...]
    created: bool

    @property
    def changed(self) -> bool:
        return bool(self.envelopes)


@dataclass(frozen=True)
class _Aggregate(Generic[S]):
    type: str
    initial: S
    evolve: Callable[[S, EventPayload], S]
    #: A later command continues the aggregate's story: caused by its last event, in the
    #: correlation of its first (a post's life; gongkai.causality).
    follow: bool = False

    @property
    def decider(self) -> Decider[S, Callable[[S], Sequence[EventPayload]]]:
        """The aggregate as the runner takes it: the command is the route's decision."""
        initial, evolve = self.initial, self.evolve
        return Decider(
            self.type,
            lambda _id: initial,
            lambda state, rec: evolve(state, rec.envelope.payload),
            lambda state, decide: decide(state),
            follow=self.follow,
        )


POST = _Aggregate("post", posts.INITIAL, posts.evolve, follow=True)
PUBLICATION = _Aggregate("publication", publications.INITIAL, publications.evolve, follow=True)
UNIT = _Aggregate("unit", dir_domain.UNIT_INITIAL, dir_domain.evolve_unit)
PERSON = _Aggregate("person", dir_domain.PERSON_INITIAL, dir_domain.evolve_person)


def fold(agg: _Aggregate[S], history: Sequence[RecordedEvent]) -> S:
    state = agg.initial
    for rec in history:
        state = agg.evolve(state, rec.envelope.payload)
    return state


def command_of(cls: type[C], req: BaseModel, **given: Any) -> C:
    """The domain command ``cls`` with the request's fields of the same names, and ``given``
    (what the request does not carry: ids from the path or the command id). Lists become
    tuples: a command is immutable."""
    names = [f.name for f in dataclasses.fields(cls) if f.name not in given]
    taken = {n: getattr(req, n) for n in names if n in type(req).model_fields}
    return cls(**{n: tuple(v) if isinstance(v, list) else v for n, v in taken.items()}, **given)


def office_unit(principal: Principal) -> str | None:
    return next((u for u, r in sorted(principal.roles) if r == "office"), None)


def acting_as(principal: Principal, unit: str, preferred: Sequence[str]) -> Actor:
    """The role the caller acts in: their own role in the unit, else the county office."""
    roles = principal.roles_in(unit)
    for role in preferred:
        if role in roles:
            return Actor(person=principal.person_id, role=role, unit=unit)
    office = office_unit(principal)
    if office is None:
        raise RuntimeError("the decision allowed a caller with no acting role")
    return Actor(person=principal.person_id, role="office", unit=office)


def _post_answer(post_id: str, env: Envelope[Any], seq: int) -> dict[str, Any]:
    p = env.payload
    assert isinstance(p, PostSubmitted | PostRevised)
    return schemas.PostAccepted(
        post_id=post_id,
        unit=p.unit,
        column=p.column if isinstance(p, PostSubmitted) else "",
        content_version=p.content_version,
        content_digest=p.content_digest,
        maker_unsure=p.maker_unsure if isinstance(p, PostSubmitted) else False,
        needs_secrecy_review=p.screening.needs_secrecy_review,
        personal_data=list(p.screening.spans),
        event_id=env.event_id,
        sequence=seq,
    ).model_dump(mode="json")


class IntakeApp:
    """Every command intake accepts, whichever adapter it arrived on."""

    #: command name -> (request model, path parameters). The name is also the bus subject's
    #: last token and part of the command id, so one key means one command on either path.
    COMMANDS: dict[str, tuple[type[BaseModel], tuple[str, ...]]] = {
        "submit_post": (schemas.SubmitPostRequest, ()),
        "revise_post": (schemas.RevisePostRequest, ("post_id",)),
        "withdraw_post": (schemas.WithdrawPostRequest, ("post_id",)),
        "report_publication": (schemas.ReportPublicationRequest, ()),
        "remove_publication": (schemas.RemovePublicationRequest, ("publication_id",)),
        "register_unit": (schemas.RegisterUnitRequest, ()),
        "register_person": (schemas.RegisterPersonRequest, ()),
        "grant_role": (schemas.RoleRequest, ("person_id",)),
        "revoke_role": (schemas.RoleRequest, ("person_id",)),
        "revoke_tokens": (schemas.TokenRevocationRequest, ("person_id",)),
        "record_leadership_change": (schemas.LeadershipChangeRequest, ("unit",)),
    }

    def __init__(
        self,
        *,
        evlog: EventLog,
        directory: Directory,
        choices: ColumnChoices,
        catalog: ColumnCatalog,
        idempotency: IdempotencyStore,
        clock: Clock,
    ) -> None:
        self.evlog = evlog
        self.directory = directory
        self.choices = choices
        self.catalog = catalog
        self.idempotency = idempotency
        self.clock = clock
        self.log = structlog.get_logger("gongkai.intake")
        self._handlers: dict[str, Callable[[_Call, Any], Awaitable[Answer]]] = {
            "submit_post": self._submit_post,
            "revise_post": self._revise_post,
            "withdraw_post": self._withdraw_post,
            "report_publication": self._report_publication,
            "remove_publication": self._remove_publication,
            "register_unit": self._register_unit,
            "register_person": self._register_person,
            "grant_role": functools.partial(self._role_change, grant=True),
            "revoke_role": functools.partial(self._role_change, grant=False),
            "revoke_tokens": self._revoke_tokens,
            "record_leadership_change": self._record_leadership_change,
        }

    # ---- the one entry point of every command -----------------------------------------

    async def execute(
        self,
        command: str,
        principal: Principal,
        key: str | None,
        params: dict[str, str],
        request: BaseModel,
    ) -> Answer:
        IdempotencyStore.check_key(key)
        if not key:
            raise Problem(
                400,
                "Idempotency-Key required",
                "every command carries an Idempotency-Key header so a retry records once",
                field="Idempotency-Key",
            )
        for name, value in params.items():
            if not is_token(value):
                raise invalid_identifier(name, value)
        digest = request_digest(
            "POST", command, {"params": params, "body": request.model_dump(mode="json")}
        )
        person = principal.person_id
        stored = self.idempotency.lookup(person, key, digest)
        if stored is not None:
            return Answer(stored.status, stored.body, replayed=True)
        command_id = IdempotencyStore.command_id(person, key, command)
        # Bound and reset by token: structlog's ``bound_contextvars`` reads the whole context
        # first to restore other keys (2 % of a submission under py-spy); these three are
        # restored by their tokens all the same.
        tokens = structlog.contextvars.bind_contextvars(
            command=command, command_id=command_id, person=person
        )
        try:
            answer = await self._handlers[command](_Call(principal, command_id, params), request)
        except Refusal as r:
            self._log_rejection(r)
            raise refusal_problem(r) from None
        finally:
            structlog.contextvars.reset_contextvars(**tokens)
        await self.idempotency.record(
            person,
            key,
            digest,
            answer.status,
            answer.body,
            self.clock.now(),
        )
        return answer

    def _log_rejection(self, r: Refusal) -> None:
        # Never the content: a refused classified text must not reach the logs either.
        if r.kind == "refused":
            marks = r.extra.get("marks", [])
            self.log.warning(
                "classified_content_refused",
                fields=sorted({m["field"] for m in marks}),
                levels=sorted({m["level"] for m in marks}),
            )
        else:
            self.log.info("command_rejected", kind=r.kind, field=r.field, reason=r.title)

    # ---- facts -----------------------------------------------------------------------------

    def today(self) -> date:
        return local_date(self.clock.now())

    def _unit_kind(self, unit: str) -> str | None:
        row = self.directory.unit(unit)
        return str(row["kind"]) if row else None

    def _post_facts(self, unit: str, column: str) -> tuple[str | None, bool | None]:
        return self._unit_kind(unit), self.choices.hidden(unit, column)

    # ---- recording ---------------------------------------------------------------------

    def _recorded(self, envs: Sequence[Envelope[Any]], duplicate: bool) -> None:
        # Counted in gongkai_events_appended_total by the log itself, once per event.
        for env in envs:
            self.log.info(
                "event_recorded",
                type=env.type,
                aggregate=f"{env.aggregate_type}/{env.aggregate_id}",
                event_id=env.event_id,
                correlation_id=env.correlation_id,
                duplicate=duplicate,
            )

    async def _append_new(
        self,
        agg: _Aggregate[Any],
        aggregate_id: str,
        command_id: str,
        payloads: Sequence[EventPayload],
        actor: Actor,
        *,
        cause: Envelope[Any] | None = None,
    ) -> Outcome:
        """Record the first events of an aggregate whose id comes from the command id."""
        handled = await handle(
            self.evlog,
            agg.decider,
            aggregate_id,
            lambda _state: payloads,
            command_id=command_id,
            actor=actor,
            now=self.clock.now,
            cause=cause,
            new=True,
        )
        self._recorded(handled.events, duplicate=handled.replayed)
        return Outcome(handled.events, handled.sequences, created=True)

    async def _update(
        self,
        agg: _Aggregate[S],
        aggregate_id: str,
        command_id: str,
        decide: Callable[[S], Sequence[EventPayload]],
        actor: Callable[[S], Actor],
    ) -> tuple[Outcome, S]:
        """One command through the shared runner (``gongkai.decider.handle``)."""
        handled = await handle(
            self.evlog,
            agg.decider,
            aggregate_id,
            decide,
            command_id=command_id,
            actor=actor,
            now=self.clock.now,
        )
        self._recorded(handled.events, duplicate=handled.replayed)
        outcome = Outcome(handled.events, handled.sequences, created=handled.created)
        return outcome, handled.before

    # ---- posts -------------------------------------------------------------------------

    async def _submit_post(self, call: _Call, req: schemas.SubmitPostRequest) -> Answer:
        post_id = f"post-{call.command_id[:20]}"
        unit_kind, hidden = self._post_facts(req.unit, req.column)
        ctx = posts.Context(
            today=self.today(),
            caller_roles=frozenset(call.principal.roles_in(req.unit)),
            unit_kind=unit_kind,
            catalog=self.catalog,
            column_hidden=hidden,
        )
        cmd = command_of(posts.SubmitPost, req, post_id=post_id)
        payloads = posts.submit(cmd, posts.INITIAL, ctx)
        actor = acting_as(call.principal, req.unit, ("maker", "staff"))
        outcome = await self._append_new(POST, post_id, call.command_id, payloads, actor)
        return Answer(201, _post_answer(post_id, outcome.envelopes[0], outcome.sequences[0]))

    async def _post_command(
        self,
        call: _Call,
        decide: Callable[[posts.PostState, posts.Context], Sequence[EventPayload]],
        roles: tuple[str, ...],
    ) -> tuple[Outcome, posts.PostState]:
        """A command on a recorded post, judged by the caller's roles in the post's unit."""

        def ctx(s: posts.PostState) -> posts.Context:
            return posts.Context(
                today=self.today(), caller_roles=frozenset(call.principal.roles_in(s.unit))
            )

        return await self._update(
            POST,
            call.params["post_id"],
            call.command_id,
            lambda s: decide(s, ctx(s)),
            lambda s: acting_as(call.principal, s.unit, roles),
        )

    async def _revise_post(self, call: _Call, req: schemas.RevisePostRequest) -> Answer:
        post_id = call.params["post_id"]
        cmd = command_of(posts.RevisePost, req, post_id=post_id)
        outcome, state = await self._post_command(
            call, functools.partial(posts.revise, cmd), ("maker", "staff")
        )
        body = _post_answer(post_id, outcome.envelopes[0], outcome.sequences[0])
        body["column"] = state.column
        return Answer(201, body)

    async def _withdraw_post(self, call: _Call, req: schemas.WithdrawPostRequest) -> Answer:
        post_id = call.params["post_id"]
        cmd = command_of(posts.WithdrawPost, req, post_id=post_id)
        outcome, _ = await self._post_command(
            call, functools.partial(posts.withdraw, cmd), ("maker", "staff", "leader")
        )
        env = outcome.envelopes[0]
        return Answer(
            200,
            schemas.PostWithdrawnAnswer(
                post_id=post_id, event_id=env.event_id, sequence=outcome.sequences[0]
            ).model_dump(mode="json"),
        )

    # ---- publications ------------------------------------------------------------------

    def _publication_ctx(self, principal: Principal, unit: str, **kw: Any) -> publications.Context:
        now = self.clock.now()
        return publications.Context(
            now=now,
            today=local_date(now),
            caller_roles=frozenset(principal.roles_in(unit)),
            caller_is_office=office_unit(principal) is not None,
            **kw,
        )

    async def _report_publication(
        self, call: _Call, req: schemas.ReportPublicationRequest
    ) -> Answer:
        publication_id = f"pub-{call.command_id[:20]}"
        post_history: list[RecordedEvent] = []
        if req.post_id is not None and is_token(req.post_id):
            post_history, _ = await self.evlog.load("post", req.post_id)
        post_state = fold(POST, post_history) if req.post_id is not None else None
        ctx = self._publication_ctx(
            call.principal,
            req.unit,
            unit_kind=self._unit_kind(req.unit),
            catalog=self.catalog,
            post=post_state,
        )
        cmd = command_of(publications.ReportPublication, req, publication_id=publication_id)
        payloads = publications.report(cmd, publications.INITIAL, ctx)
        actor = (
            acting_as(call.principal, req.unit, ())
            if req.reported_by == "site_reader"
            else acting_as(call.principal, req.unit, ("maker", "staff", "leader"))
        )
        # A publication of a known post joins that post's correlation: one id follows an item
        # from submission through review to the site.
        first = payloads[0]
        known = post_history if isinstance(first, PostPublished) and first.post_id else []
        outcome = await self._append_new(
            PUBLICATION,
            publication_id,
            call.command_id,
            payloads,
            actor,
            cause=known[-1].envelope if known else None,
        )
        p = outcome.envelopes[0].payload
        assert isinstance(p, PostPublished)
        return Answer(
            201,
            schemas.PublicationRecorded(
                publication_id=publication_id,
                post_id=p.post_id,
                reported_post_id=p.reported_post_id,
                known_post=p.post_id is not None,
                event_id=outcome.envelopes[0].event_id,
                sequence=outcome.sequences[0],
            ).model_dump(mode="json"),
        )

    async def _remove_publication(
        self, call: _Call, req: schemas.RemovePublicationRequest
    ) -> Answer:
        publication_id = call.params["publication_id"]
        cmd = command_of(publications.RemovePublication, req, publication_id=publication_id)
        outcome, _ = await self._update(
            PUBLICATION,
            publication_id,
            call.command_id,
            lambda s: publications.remove(cmd, s, self._publication_ctx(call.principal, s.unit)),
            lambda s: acting_as(call.principal, s.unit, ("maker", "staff", "leader")),
        )
        return Answer(
            200,
            schemas.PublicationRemovedAnswer(
                publication_id=publication_id,
                event_id=outcome.envelopes[0].event_id,
                sequence=outcome.sequences[0],
            ).model_dump(mode="json"),
        )

    # ---- directory ---------------------------------------------------------------------

    def _admin_ctx(self, principal: Principal, **kw: Any) -> dir_domain.Context:
        return dir_domain.Context(
            admin=office_unit(principal) is not None, today=self.today(), **kw
        )

    @staticmethod
    def _directory_answer(aggregate: str, outcome: Outcome) -> Answer:
        body = schemas.DirectoryChange(
            aggregate=aggregate,
            changed=outcome.changed,
            event_ids=[e.event_id for e in outcome.envelopes],
            sequence=outcome.sequences[-1] if outcome.sequences else None,
        ).model_dump(mode="json")
        return Answer(201 if outcome.created else 200, body)

    async def _register_unit(self, call: _Call, req: schemas.RegisterUnitRequest) -> Answer:
        cmd = command_of(dir_domain.RegisterUnit, req)
        ctx = self._admin_ctx(call.principal)
        outcome, _ = await self._update(
            UNIT,
            req.code,
            call.command_id,
            lambda s: dir_domain.register_unit(cmd, s, ctx),
            lambda s: acting_as(call.principal, req.code, ()),
        )
        return self._directory_answer(f"unit/{req.code}", outcome)

    async def _person_command(
        self,
        call: _Call,
        person_id: str,
        decide: Callable[[dir_domain.PersonState], Sequence[EventPayload]],
    ) -> Answer:
        # Only the county office keeps people: it acts as itself, in no unit.
        outcome, _ = await self._update(
            PERSON, person_id, call.command_id, decide, lambda s: acting_as(call.principal, "", ())
        )
        return self._directory_answer(f"person/{person_id}", outcome)

    async def _register_person(self, call: _Call, req: schemas.RegisterPersonRequest) -> Answer:
        cmd = command_of(dir_domain.RegisterPerson, req)
        ctx = self._admin_ctx(call.principal)
        return await self._person_command(
            call,
            req.person_id,
            lambda s: dir_domain.register_person(cmd, s, ctx),
        )

    async def _role_change(self, call: _Call, req: schemas.RoleRequest, *, grant: bool) -> Answer:
        person_id = call.params["person_id"]
        unit_history, _ = await self.evlog.load("unit", req.unit)
        ctx = self._admin_ctx(call.principal, unit_exists=fold(UNIT, unit_history).exists)

        def decide(s: dir_domain.PersonState) -> Sequence[EventPayload]:
            if grant:
                return dir_domain.grant_role(
                    command_of(dir_domain.GrantRole, req, person_id=person_id), s, ctx
                )
            return dir_domain.revoke_role(
                command_of(dir_domain.RevokeRole, req, person_id=person_id), s, ctx
            )

        return await self._person_command(call, person_id, decide)

    async def _revoke_tokens(self, call: _Call, req: schemas.TokenRevocationRequest) -> Answer:
        person_id = call.params["person_id"]
        sha, hint = token_reference(req.token)
        cmd = dir_domain.RevokeTokens(person_id, sha, hint)
        ctx = self._admin_ctx(call.principal, now=self.clock.now())
        return await self._person_command(
            call, person_id, lambda s: dir_domain.revoke_tokens(cmd, s, ctx)
        )

    def tokens(self, principal: Principal, person_id: str) -> list[schemas.TokenView]:
        """A person's live tokens, for the county office: hints and times, no secrets."""
        if office_unit(principal) is None:
            raise Problem(403, "Not allowed", "the directory is kept by the county office")
        try:
            dir_domain.check_ident("person_id", person_id)
        except Refusal as r:
            raise refusal_problem(r) from None
        if self.directory.principal(person_id) is None:
            raise Problem(404, "Unknown person", f"no person {person_id}", field="person_id")
        return [
            schemas.TokenView(hint=t.hint, issued_at=t.issued_at, expires_at=t.expires_at)
            for t in self.directory.tokens(person_id)
        ]

    async def _record_leadership_change(
        self, call: _Call, req: schemas.LeadershipChangeRequest
    ) -> Answer:
        unit = call.params["unit"]
        cmd = command_of(dir_domain.RecordLeadershipChange, req, unit=unit)
        ctx = self._admin_ctx(call.principal, caller_roles=frozenset(call.principal.roles_in(unit)))
        outcome, _ = await self._update(
            UNIT,
            unit,
            call.command_id,
            lambda s: dir_domain.record_leadership_change(cmd, s, ctx),
            lambda s: acting_as(call.principal, unit, ("leader", "maker")),
        )
        return self._directory_answer(f"unit/{unit}", outcome)

    # ---- queries -----------------------------------------------------------------------

    async def post(self, principal: Principal, post_id: str) -> schemas.PostView:
        if not is_token(post_id):
            raise invalid_identifier("post_id", post_id)
        history, _ = await self.evlog.load("post", post_id)
        s = fold(POST, history)
        if not s.exists:
            raise Problem(404, "Unknown post", f"no post {post_id}", field="post_id")
        # The unit's people and the county office only; the refusal names nothing of the post.
        access.require_read(principal, s.unit, f"post {post_id}", field="post_id")
        return schemas.PostView(
            post_id=post_id,
            unit=s.unit,
            column=s.column,
            # Screened personal data stays masked: intake serves no reviewer.
            title=access.mask(s.title, s.spans, "title"),
            content_version=s.content_version,
            content_digest=s.content_digest,
            important_kind=s.important_kind,
            maker_unsure=s.maker_unsure,
            needs_secrecy_review=s.needs_secrecy_review,
            withdrawn=s.withdrawn,
        )

    async def publication(
        self, principal: Principal, publication_id: str
    ) -> schemas.PublicationView:
        if not is_token(publication_id):
            raise invalid_identifier("publication_id", publication_id)
        history, _ = await self.evlog.load("publication", publication_id)
        s = fold(PUBLICATION, history)
        if not s.exists:
            raise Problem(404, "Unknown publication", f"no publication {publication_id}")
        access.require_read(
            principal, s.unit, f"publication {publication_id}", field="publication_id"
        )
        return schemas.PublicationView(
            publication_id=publication_id,
            unit=s.unit,
            column=s.column,
            post_id=s.post_id,
            removed=s.removed,
        )

    async def units(self) -> list[schemas.UnitView]:
        def rows() -> list[dict[str, Any]]:
            t = self.directory.p.units
            with self.directory.engine.connect() as conn:
                return [dict(r) for r in conn.execute(select(t).order_by(t.c.code)).mappings()]

        return [schemas.UnitView(**r) for r in rows()]


def app_of(svc: IntakeService) -> Callable[[], IntakeApp]:
    """The commands of ``svc``, made on first use once it has started (a 503 before)."""
    made: list[IntakeApp] = []

    def app() -> IntakeApp:
        if not made:
            choices, idempotency = svc.stores()
            made.append(
                IntakeApp(
                    evlog=svc.evlog,
                    directory=svc.directory(),
                    choices=choices,
                    catalog=svc.catalog,
                    idempotency=idempotency,
                    clock=svc.ctx.clock,
                )
            )
        return made[0]

    return app


__all__ = ["Answer", "IntakeApp", "Outcome", "app_of"]
