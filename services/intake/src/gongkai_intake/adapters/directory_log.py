"""Directory changes straight to the log: the operator's loader and ``people token|revoke``.

These run without the HTTP API (the platform may not even have a first office user yet), so
they read the directory's current state from the log itself rather than from a projection.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from gongkai import subjects, yamltext
from gongkai.decider import Decider, View, handle
from gongkai.eventlog import EventLog
from gongkai.events import Actor, digest
from gongkai.events.contracts.intake import (
    LEGACY_TOKEN_LIFETIME_DAYS,
    TokenIssued,
    TokenRevoked,
)
from gongkai.refusal import Refusal
from gongkai.tokens import TokenView, token_hash
from gongkai_intake.domain import directory as d


class DirectoryFileError(ValueError):
    """A directory file that cannot be loaded; the message names the place in the file."""


@dataclass
class CurrentDirectory:
    units: dict[str, d.UnitState] = field(default_factory=dict)
    people: dict[str, d.PersonState] = field(default_factory=dict)
    #: Last stream sequence per (aggregate type, id): the expected sequence of the next append.
    last: dict[tuple[str, str], int] = field(default_factory=dict)


async def read_directory(evlog: EventLog) -> CurrentDirectory:
    cur = CurrentDirectory()
    for agg in ("unit", "person"):
        async for rec in evlog.replay(filter_subject=subjects.aggregate_type_filter(agg)):
            env = rec.envelope
            cur.last[(agg, env.aggregate_id)] = rec.seq
            if agg == "unit":
                cur.units[env.aggregate_id] = d.evolve_unit(
                    cur.units.get(env.aggregate_id, d.UNIT_INITIAL), env.payload
                )
            else:
                cur.people[env.aggregate_id] = d.evolve_person(
                    cur.people.get(env.aggregate_id, d.PERSON_INITIAL), env.payload
                )
    return cur


@dataclass(frozen=True)
class LoadReport:
    events: int
    aggregates: tuple[str, ...]


async def apply_directory(
    evlog: EventLog, spec: d.DirectorySpec, *, actor: Actor, now: datetime, today: date
) -> LoadReport:
    """Bring the recorded directory up to ``spec``; loading the same spec again records nothing.

    Each aggregate's events are one command through the runner, decided on the directory as
    read and appended with the aggregate's last sequence. The command id is derived from that
    sequence and the events, so two loaders racing on the same spec record once (the second
    append is the first's duplicate), and a changed spec records only what changed.
    """
    cur = await read_directory(evlog)
    count = 0
    changes = d.plan(spec, cur.units, cur.people, today, now=now)
    for ch in changes:
        last = cur.last.get((ch.aggregate_type, ch.aggregate_id), 0)
        command_id = (
            "dirload-"
            + digest(
                [
                    ch.aggregate_type,
                    ch.aggregate_id,
                    last,
                    [[e.event_type, e.model_dump(mode="json")] for e in ch.events],
                ]
            )[:32]
        )
        decider: Decider[Any, d.Decision] = d.UNIT if ch.aggregate_type == "unit" else d.PERSON
        states: Mapping[str, Any] = cur.units if ch.aggregate_type == "unit" else cur.people
        state = states.get(ch.aggregate_id, decider.initial(ch.aggregate_id))
        handled = await handle(
            evlog,
            decider,
            ch.aggregate_id,
            ch.decide,
            command_id=command_id,
            actor=actor,
            now=lambda: now,
            loaded=View(state, last, ()),
        )
        if not handled.replayed:
            count += len(handled.events)
    return LoadReport(count, tuple(f"{c.aggregate_type}/{c.aggregate_id}" for c in changes))


@dataclass(frozen=True)
class TokenChange:
    """What ``issue_token_change`` or ``revoke_tokens`` recorded."""

    #: The stream sequence of the last event recorded; None if nothing was.
    sequence: int | None
    #: Hints of the tokens revoked (replaced ones included).
    revoked: tuple[str, ...] = ()


def _checked(person_id: str) -> str:
    d.check_ident("person_id", person_id)
    return person_id


async def _record(
    evlog: EventLog,
    person_id: str,
    decide: d.Decision,
    *,
    actor: Actor,
    now: datetime,
    command_id: str,
) -> TokenChange:
    handled = await handle(
        evlog, d.PERSON, _checked(person_id), decide, command_id=command_id, actor=actor,
        now=lambda: now,
    )
    revoked = tuple(e.payload.token_hint for e in handled.events
                    if isinstance(e.payload, TokenRevoked))
    return TokenChange(handled.sequences[-1] if handled.sequences else None, revoked)


async def issue_token_change(
    evlog: EventLog,
    person_id: str,
    token_sha256: str,
    token_hint: str,
    *,
    actor: Actor,
    now: datetime,
    today: date,
    command_id: str,
    expires_at: datetime | None = None,
    replace: bool = False,
) -> TokenChange:
    """Record a token for a person, and tell which tokens it replaced. Raises Refusal if the
    person is unknown.

    ``replace``: the person's other live tokens are revoked in the same atomic append.
    ``expires_at`` defaults to the default lifetime from ``now``.
    """
    cmd = d.IssueToken(
        person_id, token_sha256, token_hint, expires_at or now + d.DEFAULT_TOKEN_LIFETIME, replace
    )
    ctx = d.Context(admin=True, today=today, now=now)
    return await _record(
        evlog, person_id, lambda state: d.issue_token(cmd, state, ctx), actor=actor, now=now,
        command_id=command_id,
    )


def token_reference(token: str | None) -> tuple[str | None, str | None]:
    """(sha256, hint) for what an operator typed: the token itself, its sha256, or its hint."""
    if token is None:
        return None, None
    token = token.strip().removeprefix("…")
    if token.startswith("gk_"):
        return token_hash(token), None
    if len(token) == 64 and all(c in "0123456789abcdef" for c in token):
        return token, None
    return None, token


async def revoke_tokens(
    evlog: EventLog,
    person_id: str,
    token: str | None,
    *,
    actor: Actor,
    now: datetime,
    today: date,
    command_id: str,
) -> TokenChange:
    """Revoke one of the person's tokens (the token, its sha256 or its hint), or all live ones.

    Raises Refusal for an unknown person or token. Once this returns, every service refuses
    the revoked tokens (``gongkai.directory``: services check the log's latest on each request).
    """
    sha, hint = token_reference(token)
    cmd = d.RevokeTokens(person_id, sha, hint)
    ctx = d.Context(admin=True, today=today, now=now)
    return await _record(
        evlog, person_id, lambda state: d.revoke_tokens(cmd, state, ctx), actor=actor, now=now,
        command_id=command_id,
    )


async def person_tokens(evlog: EventLog, person_id: str, now: datetime) -> list[TokenView]:
    """The person's live tokens from the log: hint, issue time, expiry (never the hash).

    Raises Refusal for an unknown person.
    """
    history, _ = await evlog.load("person", _checked(person_id))
    if not d.fold_person(history).exists:
        raise Refusal("not_found", "Unknown person", f"no person {person_id}", field="person_id")
    tokens: dict[str, TokenView] = {}
    for rec in history:
        p = rec.envelope.payload
        if isinstance(p, TokenIssued):
            issued = rec.envelope.recorded_at.astimezone(UTC)
            expires = p.expires_at or issued + timedelta(days=LEGACY_TOKEN_LIFETIME_DAYS)
            tokens[p.token_sha256] = TokenView(p.token_hint, issued, expires.astimezone(UTC))
        elif isinstance(p, TokenRevoked):
            tokens.pop(p.token_sha256, None)
    return sorted(
        (t for t in tokens.values() if t.expires_at > now), key=lambda t: t.issued_at
    )


# ---- directory files -----------------------------------------------------------------------


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise DirectoryFileError(f"{where}: expected text, got {type(value).__name__}")
    return str(value)


def _map(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise DirectoryFileError(f"{where}: expected a mapping")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise DirectoryFileError(f"{where}: expected a list")
    return value


def _only(m: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(m) - allowed)
    if unknown:
        raise DirectoryFileError(f"{where}: unknown key {unknown[0]!r}")


def parse_directory(doc: Any, source: str = "directory") -> d.DirectorySpec:
    """A directory document (see docs/intake.md) as a spec; every error names its place."""
    top = _map(doc, source)
    _only(top, {"units", "people"}, source)
    units = []
    for i, raw in enumerate(_list(top.get("units"), f"{source}: units")):
        where = f"{source}: units[{i}]"
        u = _map(raw, where)
        _only(u, {"code", "name", "kind", "contact_name", "contact_mobile"}, where)
        fields = ("code", "name", "kind", "contact_name", "contact_mobile")
        units.append(d.RegisterUnit(*(_str(u.get(k), f"{where}.{k}") for k in fields)))
    people = []
    for i, raw in enumerate(_list(top.get("people"), f"{source}: people")):
        where = f"{source}: people[{i}]"
        p = _map(raw, where)
        _only(p, {"id", "name", "roles"}, where)
        roles = []
        for j, r in enumerate(_list(p.get("roles"), f"{where}.roles")):
            rw = f"{where}.roles[{j}]"
            rm = _map(r, rw)
            _only(rm, {"unit", "role"}, rw)
            roles.append((_str(rm.get("unit"), f"{rw}.unit"), _str(rm.get("role"), f"{rw}.role")))
        people.append(
            d.PersonSpec(
                person_id=_str(p.get("id"), f"{where}.id"),
                name=_str(p.get("name"), f"{where}.name"),
                roles=tuple(roles),
            )
        )
    return d.DirectorySpec(units=tuple(units), people=tuple(people))


def load_directory_file(path: Path) -> d.DirectorySpec:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DirectoryFileError(f"{path}: {exc.strerror}") from None
    try:
        doc = yamltext.safe_load(text)  # JSON is YAML too
    except yaml.YAMLError as exc:
        raise DirectoryFileError(f"{path}: not YAML/JSON: {exc}") from None
    return parse_directory(doc, str(path))


def explain(r: Refusal) -> str:
    where = f" ({r.field})" if r.field else ""
    return f"{r.title}{where}: {r.detail}"
