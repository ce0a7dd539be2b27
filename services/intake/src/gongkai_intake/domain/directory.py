"""The unit directory: units (维护单位), people, their roles, tokens, leadership changes.

Two aggregates: a unit (id = unit code) and a person (id = person id; roles and tokens are
facts about the person). Directory administration is the county office's job over HTTP and the
operator's from the command line; both go through these decisions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import TypeVar, get_args

from gongkai.events import EventPayload, check_token
from gongkai.events.contracts.intake import (
    LeadershipDutiesChanged,
    PersonRegistered,
    Role,
    RoleGranted,
    RoleRevoked,
    TokenIssued,
    UnitKind,
    UnitRegistered,
)
from gongkai_intake.domain import limits
from gongkai_intake.domain.content import (
    check_not_future,
    require_text,
    screen_free_text,
)
from gongkai_intake.domain.errors import Rejected

T = TypeVar("T")

ROLES: frozenset[str] = frozenset(get_args(Role))
UNIT_KINDS: frozenset[str] = frozenset(get_args(UnitKind))
#: Attachment 2's header asks for the disclosure contact's mobile number.
MOBILE_RE = re.compile(r"^1[3-9][0-9]{9}$")
ID_MAX = 64  # the directory tables' key width
#: The unit's own maker or leader reports a change of its leaders' duties; so may the office.
LEADERSHIP_ROLES = frozenset({"maker", "leader"})


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
    person_id: str
    name: str


@dataclass(frozen=True)
class GrantRole:
    person_id: str
    unit: str
    role: str


@dataclass(frozen=True)
class RevokeRole:
    person_id: str
    unit: str
    role: str


@dataclass(frozen=True)
class IssueToken:
    person_id: str
    token_sha256: str
    token_hint: str


@dataclass(frozen=True)
class RecordLeadershipChange:
    unit: str
    changed_on: date
    summary: str


@dataclass(frozen=True)
class Context:
    #: The county office over HTTP, or the operator on the command line.
    admin: bool
    today: date
    caller_roles: frozenset[str] = frozenset()
    #: Whether the unit a role is granted in exists (GrantRole only).
    unit_exists: bool = False


# ---- state -----------------------------------------------------------------------------


@dataclass(frozen=True)
class UnitState:
    exists: bool = False
    name: str = ""
    kind: str = ""
    contact_name: str = ""
    contact_mobile: str = ""


@dataclass(frozen=True)
class PersonState:
    exists: bool = False
    name: str = ""
    roles: frozenset[tuple[str, str]] = frozenset()
    token_hashes: frozenset[str] = frozenset()


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
        return replace(state, token_hashes=state.token_hashes | {event.token_sha256})
    return state


# ---- decisions -------------------------------------------------------------------------


def _admin(ctx: Context) -> None:
    if not ctx.admin:
        raise Rejected(
            "forbidden", "Not allowed", "the directory is kept by the county office (office role)"
        )


def check_ident(field_name: str, value: str) -> None:
    try:
        check_token(value, field_name)
    except ValueError as exc:
        raise Rejected("invalid", f"Invalid {field_name}", str(exc), field=field_name) from None
    if len(value) > ID_MAX:
        raise Rejected(
            "invalid", f"Invalid {field_name}", f"at most {ID_MAX} characters", field=field_name
        )


def _name(field_name: str, value: str, maximum: int) -> None:
    require_text(field_name, value, "Name")
    if len(value) > maximum:
        raise Rejected("invalid", "Name too long", f"at most {maximum}", field=field_name)


def _role(value: str) -> None:
    if value not in ROLES:
        raise Rejected(
            "invalid", "Unknown role", f"one of {', '.join(sorted(ROLES))}", field="role"
        )


def register_unit(cmd: RegisterUnit, state: UnitState, ctx: Context) -> list[UnitRegistered]:
    _admin(ctx)
    check_ident("code", cmd.code)
    _name("name", cmd.name, limits.UNIT_NAME_MAX)
    if cmd.kind not in UNIT_KINDS:
        raise Rejected(
            "invalid",
            "Unknown unit kind",
            f"one of {', '.join(sorted(UNIT_KINDS))}",
            field="kind",
        )
    _name("contact_name", cmd.contact_name, limits.NAME_MAX)
    if not MOBILE_RE.match(cmd.contact_mobile):
        raise Rejected(
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
        raise Rejected("not_found", "Unknown person", f"no person {person_id}", field="person_id")


def grant_role(cmd: GrantRole, state: PersonState, ctx: Context) -> list[RoleGranted]:
    _admin(ctx)
    _known_person(state, cmd.person_id)
    _role(cmd.role)
    if not ctx.unit_exists:
        raise Rejected("invalid", "Unknown unit", f"no unit {cmd.unit!r}", field="unit")
    if (cmd.unit, cmd.role) in state.roles:
        return []
    return [RoleGranted(person_id=cmd.person_id, unit=cmd.unit, role=cmd.role)]  # type: ignore[arg-type]


def revoke_role(cmd: RevokeRole, state: PersonState, ctx: Context) -> list[RoleRevoked]:
    _admin(ctx)
    _known_person(state, cmd.person_id)
    _role(cmd.role)
    if (cmd.unit, cmd.role) not in state.roles:
        raise Rejected(
            "conflict",
            "Role not held",
            f"{cmd.person_id} does not hold {cmd.role} in {cmd.unit}",
            field="role",
        )
    return [RoleRevoked(person_id=cmd.person_id, unit=cmd.unit, role=cmd.role)]  # type: ignore[arg-type]


def issue_token(cmd: IssueToken, state: PersonState, ctx: Context) -> list[TokenIssued]:
    _admin(ctx)
    _known_person(state, cmd.person_id)
    if cmd.token_sha256 in state.token_hashes:
        return []
    return [
        TokenIssued(
            person_id=cmd.person_id, token_sha256=cmd.token_sha256, token_hint=cmd.token_hint
        )
    ]


def record_leadership_change(
    cmd: RecordLeadershipChange, state: UnitState, ctx: Context
) -> list[LeadershipDutiesChanged]:
    if not state.exists:
        raise Rejected("not_found", "Unknown unit", f"no unit {cmd.unit!r}", field="unit")
    if not (ctx.admin or ctx.caller_roles & LEADERSHIP_ROLES):
        raise Rejected(
            "forbidden",
            "Not allowed",
            f"the office, or a maker or leader of {cmd.unit}, reports its leadership changes",
            field="unit",
        )
    check_not_future("changed_on", cmd.changed_on, ctx.today)
    require_text("summary", cmd.summary, "Summary")
    if len(cmd.summary) > limits.SUMMARY_MAX:
        raise Rejected(
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


def plan(
    spec: DirectorySpec,
    units: Mapping[str, UnitState],
    people: Mapping[str, PersonState],
    today: date,
) -> list[Change]:
    """The events that bring the directory up to ``spec``; none if it already matches.

    Additive: roles and tokens missing from the spec are left alone (revoking is an explicit
    act). Units come first so every role names a unit that exists by then.
    """
    ctx = Context(admin=True, today=today)
    changes: list[Change] = []
    known_units = {code for code, s in units.items() if s.exists}
    for u in _unique(spec.units, lambda u: u.code, "code"):
        registered = register_unit(u, units.get(u.code, UNIT_INITIAL), ctx)
        known_units.add(u.code)
        if registered:
            changes.append(Change("unit", u.code, tuple(registered)))
    for p in _unique(spec.people, lambda p: p.person_id, "person_id"):
        evs = _plan_person(p, people.get(p.person_id, PERSON_INITIAL), known_units, ctx)
        if evs:
            changes.append(Change("person", p.person_id, tuple(evs)))
    return changes


def _plan_person(
    p: PersonSpec, state: PersonState, known_units: set[str], ctx: Context
) -> list[EventPayload]:
    evs: list[EventPayload] = []
    state = _fold_into(evs, state, register_person(RegisterPerson(p.person_id, p.name), state, ctx))
    for unit, role in p.roles:
        grant_ctx = replace(ctx, unit_exists=unit in known_units)
        state = _fold_into(
            evs, state, grant_role(GrantRole(p.person_id, unit, role), state, grant_ctx)
        )
    if p.token_sha256 is not None:
        token = IssueToken(p.person_id, p.token_sha256, p.token_hint)
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
            raise Rejected("invalid", "Listed twice", f"{what} {k!r} appears twice", field=what)
        seen.add(k)
        yield item
