"""Every service's fold takes any valid event, in any order, without raising.

A fold that raises on a valid event makes its projection dead-letter a fact: the read model
silently lacks it (and a half-applied mutation may stay behind). Events are facts recorded by
other services, other versions of gongkai and other rule sets (a ColumnHidden for a column the
current catalog no longer has), so each fold must ignore what it cannot use. The events here
are valid envelopes of every registered type whose units, columns, posts, publications, cases,
findings and violations come from small pools, so that they meet in the folds.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gongkai.calendar import WorkingCalendar
from gongkai.rules import load_rule_sets
from gongkai_accountability.domain.decide import Policy, decide
from gongkai_accountability.domain.fold import evolve as accountability_evolve
from gongkai_accountability.domain.report import as_of_view, unit_reports
from gongkai_accountability.domain.rows import MemoryRows
from gongkai_freshness.domain import register as freshness
from gongkai_freshness.domain.report import status_table
from gongkai_intake.domain import posts
from gongkai_review.domain.chain import fold as review_fold
from gongkai_review.domain.chain import status as review_status
from tests.property.strategies import SHA256, Pools, envelopes

CALENDAR = WorkingCalendar.default()
RULE_SETS = load_rule_sets(("wenan-2018", "national-2019"))
UNITS = st.sampled_from(["u1", "u2", "county-office"])
COLUMNS = st.sampled_from(["normative_documents", "leaders_activities", "service_guides", "zz"])
POOLS: Pools = {
    "aggregate_id": st.sampled_from(["P1", "P2", "pub1", "u1", "u1--leaders_activities", "F1"]),
    "unit": UNITS,
    "code": UNITS,
    "column": COLUMNS,
    "post_id": st.sampled_from(["P1", "P2"]),
    "publication_id": st.sampled_from(["pub1", "pub2"]),
    "case_id": st.sampled_from(["u1--leaders_activities--1", "C2"]),
    "finding_id": st.sampled_from(["F1", "F2"]),
    "violation_id": st.sampled_from(["V1", "V2"]),
    "person_id": st.sampled_from(["u1-maker", "u1-leader"]),
    "episode": st.sampled_from(["e1", "e2"]),
    "rule_set": st.sampled_from(["wenan-2018", "national-2019", "gone-2017"]),
    "content_digest": st.sampled_from(["a" * 64, "b" * 64]) | SHA256,
}
HISTORIES = st.lists(envelopes(pools=POOLS), min_size=1, max_size=12)
AS_OF = date(2026, 3, 2)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(history=HISTORIES)
def test_freshness_register_folds_any_history(history: list[Any]) -> None:
    reg = freshness.empty(freshness.rule_book(RULE_SETS, CALENDAR))
    reg = freshness.fold(reg, [(env, seq) for seq, env in enumerate(history, 1)])
    freshness.decide_all(reg, AS_OF)
    status_table(reg, AS_OF)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(history=HISTORIES)
def test_accountability_folds_any_history(history: list[Any]) -> None:
    rows = MemoryRows()
    for seq, env in enumerate(history, 1):
        accountability_evolve(rows, env, seq)
    for day in (AS_OF, AS_OF + timedelta(days=30)):
        decide(rows, day, history[-1].recorded_at, CALENDAR, Policy())
        as_of_view(rows, day)
    unit_reports(rows, AS_OF - timedelta(days=365), AS_OF + timedelta(days=30))


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(history=HISTORIES)
def test_review_and_intake_fold_any_history(history: list[Any]) -> None:
    review_status(review_fold(history))
    state = posts.INITIAL
    for env in history:
        state = posts.evolve(state, env.payload)
