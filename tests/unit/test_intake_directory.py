"""The directory decider and the loader's plan: pure, no I/O."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from gongkai.events.contracts.intake import (
    LeadershipDutiesChanged,
    PersonRegistered,
    RoleGranted,
    TokenIssued,
    UnitRegistered,
)
from gongkai.refusal import Refusal
from gongkai_demo.county import DEMO, UNITS, demo_token
from gongkai_intake.adapters.directory_log import DirectoryFileError, parse_directory
from gongkai_intake.domain import directory as d

TODAY = date(2026, 3, 2)
ADMIN = d.Context(admin=True, today=TODAY)
UNIT = d.RegisterUnit("audit", "文河县审计局", "department", "联络员", "19900009999")


def rejected(fn: Any, *args: Any) -> Refusal:
    with pytest.raises(Refusal) as info:
        fn(*args)
    return info.value


def test_unit_registration_records_changes_only() -> None:
    [e] = d.register_unit(UNIT, d.UNIT_INITIAL, ADMIN)
    assert isinstance(e, UnitRegistered)
    state = d.evolve_unit(d.UNIT_INITIAL, e)
    assert d.register_unit(UNIT, state, ADMIN) == []
    [renamed] = d.register_unit(
        d.RegisterUnit("audit", "新名", "department", "联络员", "19900009999"), state, ADMIN
    )
    assert renamed.name == "新名"


@pytest.mark.parametrize(
    ("unit", "field"),
    [
        (d.RegisterUnit("a b", "n", "department", "c", "19900009999"), "code"),
        (d.RegisterUnit("a" * 65, "n", "department", "c", "19900009999"), "code"),
        (d.RegisterUnit("a", "n", "bureau", "c", "19900009999"), "kind"),
        (d.RegisterUnit("a", " ", "department", "c", "19900009999"), "name"),
        (d.RegisterUnit("a", "n", "department", "c", "12900009999"), "contact_mobile"),
        (d.RegisterUnit("a", "n", "department", "c", "1990000999"), "contact_mobile"),
    ],
)
def test_unit_validation(unit: d.RegisterUnit, field: str) -> None:
    assert rejected(d.register_unit, unit, d.UNIT_INITIAL, ADMIN).field == field


def test_only_the_office_keeps_the_directory() -> None:
    caller = d.Context(admin=False, today=TODAY, caller_roles=frozenset({"leader"}))
    assert rejected(d.register_unit, UNIT, d.UNIT_INITIAL, caller).kind == "forbidden"
    assert (
        rejected(d.register_person, d.RegisterPerson("p", "某人"), d.PERSON_INITIAL, caller).kind
        == "forbidden"
    )


def test_roles_and_tokens() -> None:
    [reg] = d.register_person(d.RegisterPerson("p1", "某人"), d.PERSON_INITIAL, ADMIN)
    person = d.evolve_person(d.PERSON_INITIAL, reg)
    ctx = d.Context(admin=True, today=TODAY, unit_exists=True)
    [g] = d.grant_role(d.GrantRole("p1", "audit", "maker"), person, ctx)
    assert isinstance(g, RoleGranted)
    person = d.evolve_person(person, g)
    assert d.grant_role(d.GrantRole("p1", "audit", "maker"), person, ctx) == []
    assert rejected(d.grant_role, d.GrantRole("p1", "audit", "boss"), person, ctx).field == "role"
    no_unit = d.Context(admin=True, today=TODAY, unit_exists=False)
    assert rejected(d.grant_role, d.GrantRole("p1", "x", "maker"), person, no_unit).field == "unit"
    assert (
        rejected(d.grant_role, d.GrantRole("p2", "audit", "maker"), d.PERSON_INITIAL, ctx).kind
        == "not_found"
    )
    [r] = d.revoke_role(d.RevokeRole("p1", "audit", "maker"), person, ctx)
    person = d.evolve_person(person, r)
    assert person.roles == frozenset()
    assert rejected(d.revoke_role, d.RevokeRole("p1", "audit", "maker"), person, ctx).kind == (
        "conflict"
    )
    [t] = d.issue_token(d.IssueToken("p1", "a" * 64, "abcd"), person, ADMIN)
    assert isinstance(t, TokenIssued)
    assert (
        d.issue_token(d.IssueToken("p1", "a" * 64, "abcd"), d.evolve_person(person, t), ADMIN) == []
    )


def test_leadership_change() -> None:
    unit = d.evolve_unit(d.UNIT_INITIAL, d.register_unit(UNIT, d.UNIT_INITIAL, ADMIN)[0])
    leader = d.Context(admin=False, today=TODAY, caller_roles=frozenset({"leader"}))
    change = d.RecordLeadershipChange("audit", date(2026, 2, 27), "局长分工调整")
    [e] = d.record_leadership_change(change, unit, leader)
    assert isinstance(e, LeadershipDutiesChanged)
    staff = d.Context(admin=False, today=TODAY, caller_roles=frozenset({"staff"}))
    assert rejected(d.record_leadership_change, change, unit, staff).kind == "forbidden"
    assert rejected(d.record_leadership_change, change, d.UNIT_INITIAL, leader).kind == (
        "not_found"
    )
    future = d.RecordLeadershipChange("audit", date(2026, 3, 3), "x")
    assert rejected(d.record_leadership_change, future, unit, leader).field == "changed_on"


def test_plan_brings_the_directory_to_the_spec_and_then_nothing() -> None:
    changes = d.plan(DEMO.spec, {}, {}, TODAY)
    units: dict[str, d.UnitState] = {}
    people: dict[str, d.PersonState] = {}
    for ch in changes:
        for e in ch.events:
            if ch.aggregate_type == "unit":
                units[ch.aggregate_id] = d.evolve_unit(
                    units.get(ch.aggregate_id, d.UNIT_INITIAL), e
                )
            else:
                people[ch.aggregate_id] = d.evolve_person(
                    people.get(ch.aggregate_id, d.PERSON_INITIAL), e
                )
    assert [c.aggregate_type for c in changes[: len(UNITS)]] == ["unit"] * len(UNITS)
    assert d.plan(DEMO.spec, units, people, TODAY) == []
    first_person = next(c for c in changes if c.aggregate_type == "person")
    assert [type(e) for e in first_person.events] == [PersonRegistered, RoleGranted, TokenIssued]


def test_plan_refuses_an_inconsistent_spec() -> None:
    spec = d.DirectorySpec(people=(d.PersonSpec("p", "某人", (("nowhere", "maker"),)),))
    assert rejected(d.plan, spec, {}, {}, TODAY).field == "unit"
    twice = d.DirectorySpec(units=(UNIT, UNIT))
    assert rejected(d.plan, twice, {}, {}, TODAY).field == "code"


def test_demo_tokens_are_stable_and_distinct() -> None:
    tokens = DEMO.tokens
    assert tokens["finance-maker"] == demo_token("finance-maker")
    assert len(set(tokens.values())) == len(tokens)
    assert DEMO.person("finance", "maker") == "finance-maker"


@pytest.mark.parametrize(
    ("doc", "where"),
    [
        ([], "directory"),
        ({"unit": []}, "unknown key 'unit'"),
        ({"units": [{"code": "a"}]}, "units[0].name"),
        (
            {
                "units": [
                    {
                        "code": "a",
                        "name": "n",
                        "kind": "department",
                        "contact_name": "c",
                        "contact_mobile": "1",
                        "extra": 1,
                    }
                ]
            },
            "units[0]: unknown key 'extra'",
        ),
        ({"people": [{"id": "p", "name": "n", "roles": [{"unit": "a"}]}]}, "roles[0].role"),
        ({"people": [{"id": "p", "name": ["n"]}]}, "people[0].name"),
    ],
)
def test_directory_file_errors_name_the_place(doc: Any, where: str) -> None:
    with pytest.raises(DirectoryFileError, match=__import__("re").escape(where)):
        parse_directory(doc)
