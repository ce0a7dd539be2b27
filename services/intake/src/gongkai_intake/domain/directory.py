"""The unit directory: units (维护单位), people, their roles, tokens, leadership changes.

Two aggregates: a unit (id = unit code) and a person (id = person id; roles and tokens are
facts about the person). Directory administration is the county office's job over HTTP and the
operator's from the command line; both go through these decisions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any, TypeVar, get_args

from gongkai.decider import Decider
from gongkai.events import EventPayload, check_token
from gongkai.events.contracts.intake import (
    LeadershipDutiesChanged,
    PersonRegistered,
    Role,
    RoleGranted,
    RoleRevoked,
    TokenIssued,
    TokenRevoked,
    UnitKind,
    UnitRegistered,
)
from gongkai.logtypes import RecordedEvent
from gongkai.refusal import Refusal
from gongkai_intake.domain import limits
from gongkai_intake.domain.content import (
    check_not_future,
    require_text,
    screen_free_text,
)
from gongkai_intake.domain.context import Caller, not_allowed

T = TypeVar("T")

ROLES: frozenset[str] = frozenset(get_args(Role))
UNIT_KINDS: frozenset[str] = frozenset(get_args(UnitKind))
#: Attachment 2's header asks for the disclosure contact's mobile number.
MOBILE_RE = re.compile(r"^1[3-9][0-9]{9}$")
ID_MAX = 64  # the directory tables' key width
#: The unit's own maker or leader reports a change of its leaders' duties; so may the office.
LEADERSHIP_ROLES = frozenset({"maker", "leader"})
#: A token's lifetime unless the issuer says otherwise (``GONGKAI_TOKEN_LIFETIME_DAYS``).
DEFAULT_TOKEN_LIFETIME = timedelta(days=90)


# ---- commands --------------------------------------------------------------------------


@dataclass(frozen=True)
class RegisterUnit:
    code: str
    name: str
    kind: str
    contact_name: str
    contact_mobile: str


@dataclass(frozen=True)
class RegisterPerson:
    """A person joins the directory; roles in units are granted to them afterwards."""

    person_id: str
    name: str


@dataclass(frozen=True)
class RoleCommand:
    """A person's role in a unit, to grant or to revoke."""

    person_id: str
    unit: str
    role: str


class GrantRole(RoleCommand):
    pass


class RevokeRole(RoleCommand):
    pass


@dataclass(frozen=True)
class IssueToken:
    person_id: str
    token_sha256: str
    token_hint: str
    #: None only from callers that predate expiries (readers then apply the legacy lifetime).
    expires_at: datetime | None = None
    #: Revoke the person's other live tokens in the same append ("replaced").
    replace: bool = False


@dataclass(frozen=True)
class RevokeTokens:
    """Revoke one token (by its sha256 or by the hint the list shows), or all live ones."""

    person_id: str
    token_sha256: str | None = None
    token_hint: str | None = None


@dataclass(frozen=True)
class RecordLeadershipChange:
    """The unit's leaders or their duties changed on ``changed_on``: its 领导成员和分工 column
    is then due within 10 working days."""

    unit: str
    changed_on: date
    summary: str


@dataclass(frozen=True, kw_only=True)
class Context(Caller):
    """Facts from outside a unit's or a person's history that a directory decision depends on."""

    #: The county office over HTTP, or the operator on the command line.
    admin: bool
    #: Whether the unit a role is granted in exists (GrantRole only).
    unit_exists: bool = False
    #: The instant of the decision: which tokens are still live. None: every unrevoked one.
    now: datetime | None = None


# ---- state -----------------------------------------------------------------------------


@dataclass(frozen=True)
class UnitState:
    exists: bool = False
    name: str = ""
    kind: str = ""
    contact_name: str = ""
    contact_mobile: str = ""


@dataclass(frozen=True)
class TokenState:
    hint: str
    #: None: recorded before expiries existed (see ``LEGACY_TOKEN_LIFETIME_DAYS``).
    expires_at: datetime | None = None
    revoked: bool = False

    def live(self, now: datetime | None) -> bool:
        if self.revoked:
            return False
        return now is None or self.expires_at is None or now < self.expires_at


@dataclass(frozen=True)
class PersonState:
    exists: bool = False
    name: str = ""
    roles: frozenset[tuple[str, str]] = frozenset()
    #: Every token ever issued to the person, by sha256.
    tokens: Mapping[str, TokenState] = field(default_factory=dict)

    @property
    def token_hashes(self) -> frozenset[str]:
        return frozenset(self.tokens)

    def live_tokens(self, now: datetime | None) -> dict[str, TokenState]:
        return {h: t for h, t in self.tokens.items() if t.live(now)}


UNIT_INITIAL = UnitState()
PERSON_INITIAL = PersonState()


def evolve_unit(state: UnitState, event: EventPayload) -> UnitState:
    if isinstance(event, UnitRegistered):
        return UnitState(True, event.name, event.kind, event.contact_name, event.contact_mobile)
    return state


def evolve_person(state: PersonState, event: EventPayload) -> PersonState:
    if isinstance(event, PersonRegistered):
        return replace(state, exists=True, name=event.name)
    if isinstance(event, RoleGranted):
        return replace(state, roles=state.roles | {(event.unit, event.role)})
    if isinstance(event, RoleRevoked):
        return replace(state, roles=state.roles - {(event.unit, event.role)})
    if isinstance(event, TokenIssued):
        token = TokenState(event.token_hint, event.expires_at)
        return replace(state, tokens={**state.tokens, event.token_sha256: token})
    if isinstance(event, TokenRevoked) and event.token_sha256 in state.tokens:
        revoked = replace(state.tokens[event.token_sha256], revoked=True)
        return replace(state, tokens={**state.tokens, event.token_sha256: revoked})
    return state


#: A directory command as the runner takes it: the decision, applied to the aggregate's state
#: (the route or the loader has bound the command and its context).
Decision = Callable[[Any], Sequence[EventPayload]]


def _decide(state: Any, decision: Decision) -> Sequence[EventPayload]:
    return decision(state)


UNIT: Decider[UnitState, Decision] = Decider(
    "unit",
    lambda _id: UNIT_INITIAL,
    lambda state, rec: evolve_unit(state, rec.envelope.payload),
    _decide,
)
PERSON: Decider[PersonState, Decision] = Decider(
    "person",
    lambda _id: PERSON_INITIAL,
    lambda state, rec: evolve_person(state, rec.envelope.payload),
    _decide,
)


def fold_person(history: Sequence[RecordedEvent]) -> PersonState:
    return PERSON.fold("", history)


# ---- decisions -------------------------------------------------------------------------


def _admin(ctx: Context) -> None:
    if not ctx.admin:
        raise not_allowed("the directory is kept by the county office (office role)")


def check_ident(field_name: str, value: str) -> None:
    try:
        check_token(value, field_name)
    except ValueError as exc:
        raise Refusal("invalid", f"Invalid {field_name}", str(exc), field=field_name) from None
    if len(value) > ID_MAX:
        raise Refusal(
            "invalid", f"Invalid {field_name}", f"at most {ID_MAX} characters", field=field_name
        )


def _name(field_name: str, value: str, maximum: int) -> None:
    require_text(field_name, value, "Name")
    if len(value) > maximum:
        raise Refusal("invalid", "Name too long", f"at most {maximum}", field=field_name)


def _one_of(field_name: str, value: str, allowed: frozenset[str], title: str) -> None:
    """A code from a closed list (a role, a unit kind), or a refusal that lists it."""
    if value not in allowed:
        raise Refusal("invalid", title, f"one of {', '.join(sorted(allowed))}", field=field_name)


def register_unit(cmd: RegisterUnit, state: UnitState, ctx: Context) -> list[UnitRegistered]:
    _admin(ctx)
    check_ident("code", cmd.code)
    _name("name", cmd.name, limits.UNIT_NAME_MAX)
    _one_of("kind", cmd.kind, UNIT_KINDS, "Unknown unit kind")
    _name("contact_name", cmd.contact_name, limits.NAME_MAX)
    if not MOBILE_RE.match(cmd.contact_mobile):
        raise Refusal(
            "invalid",
            "Invalid mobile number",
            "11 digits starting 13-19",
            field="contact_mobile",
        )
    wanted = UnitState(True, cmd.name, cmd.kind, cmd.contact_name, cmd.contact_mobile)
    if wanted == state:
        return []
    return [
        UnitRegistered(
            code=cmd.code,
            name=cmd.name,
            kind=cmd.kind,  # type: ignore[arg-type]  # checked against UNIT_KINDS above
            contact_name=cmd.contact_name,
            contact_mobile=cmd.contact_mobile,
        )
    ]


def register_person(
    cmd: RegisterPerson, state: PersonState, ctx: Context
) -> list[PersonRegistered]:
    _admin(ctx)
    check_ident("person_id", cmd.person_id)
    _name("name", cmd.name, limits.NAME_MAX)
    if state.exists and state.name == cmd.name:
        return []
    return [PersonRegistered(person_id=cmd.person_id, name=cmd.name)]


def _known_person(state: PersonState, person_id: str) -> None:
    if not state.exists:
        raise Refusal("not_found", "Unknown person", f"no person {person_id}", field="person_id")


def grant_role(cmd: GrantRole, state: PersonState, ctx: Context) -> list[RoleGranted]:
    _admin(ctx)
    _known_person(state, cmd.person_id)
    _one_of("role", cmd.role, ROLES, "Unknown role")
    if not ctx.unit_exists:
        raise Refusal("invalid", "Unknown unit", f"no unit {cmd.unit!r}", field="unit")
    if (cmd.unit, cmd.role) in state.roles:
        return []
    return [RoleGranted(person_id=cmd.person_id, unit=cmd.unit, role=cmd.role)]  # type: ignore[arg-type]


def revoke_role(cmd: RevokeRole, state: PersonState, ctx: Context) -> list[RoleRevoked]:
    _admin(ctx)
    _known_person(state, cmd.person_id)
    _one_of("role", cmd.role, ROLES, "Unknown role")
    if (cmd.unit, cmd.role) not in state.roles:
        raise Refusal(
            "conflict",
            "Role not held",
            f"{cmd.person_id} does not hold {cmd.role} in {cmd.unit}",
            field="role",
        )
    return [RoleRevoked(person_id=cmd.person_id, unit=cmd.unit, role=cmd.role)]  # type: ignore[arg-type]


def issue_token(
    cmd: IssueToken, state: PersonState, ctx: Context
) -> list[TokenIssued | TokenRevoked]:
    """Record a token; with ``replace``, also revoke the person's other live tokens.

    Issuing a token that is already live records nothing (a retry, a demo reloaded); one that
    was revoked or has expired is issued again with the new expiry.
    """
    _admin(ctx)
    _known_person(state, cmd.person_id)
    if ctx.now is not None and cmd.expires_at is not None and cmd.expires_at <= ctx.now:
        raise Refusal(
            "invalid", "Expiry in the past", "a token must expire later", field="expires_at"
        )
    already = state.tokens.get(cmd.token_sha256)
    out: list[TokenIssued | TokenRevoked] = []
    if already is None or not already.live(ctx.now):
        out.append(
            TokenIssued(
                person_id=cmd.person_id,
                token_sha256=cmd.token_sha256,
                token_hint=cmd.token_hint,
                expires_at=cmd.expires_at,
            )
        )
    if cmd.replace:
        out.extend(
            TokenRevoked(
                person_id=cmd.person_id, token_sha256=h, token_hint=t.hint, reason="replaced"
            )
            for h, t in sorted(state.live_tokens(ctx.now).items())
            if h != cmd.token_sha256
        )
    return out


def revoke_tokens(cmd: RevokeTokens, state: PersonState, ctx: Context) -> list[TokenRevoked]:
    """Revoke the token named by sha256 or hint, or every live token of the person.

    A token named by sha256 is revoked even if it has expired meanwhile (it is then on record
    as revoked, too); a hint names a live token, and must name exactly one. Revoking all when
    no token is live records nothing.
    """
    _admin(ctx)
    _known_person(state, cmd.person_id)
    if cmd.token_sha256 is not None:
        t = state.tokens.get(cmd.token_sha256)
        if t is None or t.revoked:
            raise Refusal(
                "not_found",
                "Unknown token",
                f"{cmd.person_id} has no unrevoked token with that hash",
                field="token",
            )
        chosen = {cmd.token_sha256: t}
    elif cmd.token_hint is not None:
        chosen = {
            h: t for h, t in state.live_tokens(ctx.now).items() if t.hint == cmd.token_hint
        }
        if not chosen:
            raise Refusal(
                "not_found",
                "Unknown token",
                f"{cmd.person_id} has no live token ending {cmd.token_hint!r}",
                field="token",
            )
        if len(chosen) > 1:
            raise Refusal(
                "conflict",
                "Ambiguous token hint",
                f"{len(chosen)} live tokens of {cmd.person_id} end {cmd.token_hint!r}; "
                "name the token itself or its sha256",
                field="token",
            )
    else:
        chosen = state.live_tokens(ctx.now)
    return [
        TokenRevoked(person_id=cmd.person_id, token_sha256=h, token_hint=t.hint)
        for h, t in sorted(chosen.items())
    ]


def record_leadership_change(
    cmd: RecordLeadershipChange, state: UnitState, ctx: Context
) -> list[LeadershipDutiesChanged]:
    if not state.exists:
        raise Refusal("not_found", "Unknown unit", f"no unit {cmd.unit!r}", field="unit")
    if not (ctx.admin or ctx.caller_roles & LEADERSHIP_ROLES):
        raise not_allowed(
            f"the office, or a maker or leader of {cmd.unit}, reports its leadership changes",
            "unit",
        )
    check_not_future("changed_on", cmd.changed_on, ctx.today)
    require_text("summary", cmd.summary, "Summary")
    if len(cmd.summary) > limits.SUMMARY_MAX:
        raise Refusal(
            "invalid", "Summary too long", f"at most {limits.SUMMARY_MAX}", field="summary"
        )
    screen_free_text("summary", cmd.summary, ctx.today)
    return [LeadershipDutiesChanged(unit=cmd.unit, changed_on=cmd.changed_on, summary=cmd.summary)]


# ---- loading a whole directory (demo data, an operator's file) ---------------------------


@dataclass(frozen=True)
class PersonSpec:
    person_id: str
    name: str
    roles: tuple[tuple[str, str], ...] = ()
    #: sha256 of a token to make sure exists (the demo's deterministic tokens).
    token_sha256: str | None = None
    token_hint: str = ""


@dataclass(frozen=True)
class DirectorySpec:
    units: tuple[RegisterUnit, ...] = ()
    people: tuple[PersonSpec, ...] = ()


@dataclass(frozen=True)
class Change:
    aggregate_type: str
    aggregate_id: str
    events: tuple[EventPayload, ...] = field(default_factory=tuple)
    #: The same rule applied to the aggregate as it stands when recorded: after losing a race
    #: the runner decides again on what the other writer left, not on the plan's snapshot.
    decide: Decision = field(default=lambda _state: (), compare=False, repr=False)


def plan(
    spec: DirectorySpec,
    units: Mapping[str, UnitState],
    people: Mapping[str, PersonState],
    today: date,
    now: datetime | None = None,
    token_lifetime: timedelta = DEFAULT_TOKEN_LIFETIME,
) -> list[Change]:
    """The events that bring the directory up to ``spec``; none if it already matches.

    Additive: roles and tokens missing from the spec are left alone (revoking is an explicit
    act). Units come first so every role names a unit that exists by then. A spec's token that
    is no longer live at ``now`` (expired, revoked) is issued again, to expire
    ``token_lifetime`` after ``now``.
    """
    ctx = Context(admin=True, today=today, now=now)
    lifetime = token_lifetime
    changes: list[Change] = []
    known_units = {code for code, s in units.items() if s.exists}
    for u in _unique(spec.units, lambda u: u.code, "code"):
        registered = register_unit(u, units.get(u.code, UNIT_INITIAL), ctx)
        known_units.add(u.code)
        if registered:
            changes.append(
                Change("unit", u.code, tuple(registered), partial(_register_unit, u, ctx))
            )
    for p in _unique(spec.people, lambda p: p.person_id, "person_id"):
        redo = partial(_plan_person, p, known_units=frozenset(known_units), ctx=ctx,
                       lifetime=lifetime)
        evs = redo(people.get(p.person_id, PERSON_INITIAL))
        if evs:
            changes.append(Change("person", p.person_id, tuple(evs), redo))
    return changes


def _register_unit(cmd: RegisterUnit, ctx: Context, state: UnitState) -> list[UnitRegistered]:
    return register_unit(cmd, state, ctx)


def _plan_person(
    p: PersonSpec,
    state: PersonState,
    known_units: frozenset[str],
    ctx: Context,
    lifetime: timedelta = DEFAULT_TOKEN_LIFETIME,
) -> list[EventPayload]:
    evs: list[EventPayload] = []
    state = _fold_into(evs, state, register_person(RegisterPerson(p.person_id, p.name), state, ctx))
    for unit, role in p.roles:
        grant_ctx = replace(ctx, unit_exists=unit in known_units)
        state = _fold_into(
            evs, state, grant_role(GrantRole(p.person_id, unit, role), state, grant_ctx)
        )
    if p.token_sha256 is not None:
        expires = ctx.now + lifetime if ctx.now is not None else None
        token = IssueToken(p.person_id, p.token_sha256, p.token_hint, expires)
        _fold_into(evs, state, issue_token(token, state, ctx))
    return evs


def _fold_into(
    out: list[EventPayload], state: PersonState, new: Sequence[EventPayload]
) -> PersonState:
    for e in new:
        out.append(e)
        state = evolve_person(state, e)
    return state


def _unique(items: Sequence[T], key: Callable[[T], str], what: str) -> Iterable[T]:
    seen: set[str] = set()
    for item in items:
        k = key(item)
        if k in seen:
            raise Refusal("invalid", "Listed twice", f"{what} {k!r} appears twice", field=what)
        seen.add(k)
        yield item
