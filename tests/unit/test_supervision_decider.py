"""督办 as a decider: one notice per supervision case, none once the case is closed."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from gongkai.events.contracts.accountability import SupervisionClosed, SupervisionIssued
from gongkai.refusal import Refusal
from gongkai_accountability.domain.supervision import SUPERVISION, Issue
from tests.builders import history

T0 = datetime(2026, 3, 2, 1, tzinfo=UTC)
NOTICE = SupervisionIssued(
    case_id="C1", unit="finance", column="work_news", stale_event_ids=("s1",),
    issued_on=date(2026, 3, 2), deadline=date(2026, 3, 9), working_days=5,
)
CLOSED = SupervisionClosed(
    case_id="C1", unit="finance", column="work_news", outcome="before_notice",
    closed_on=date(2026, 3, 2),
)


CASES = {
    "an open case without a notice gets it": ((), None),
    "a case with a notice gets no second one": ((NOTICE,), ("conflict", "Already issued")),
    "a closed case gets no notice": ((CLOSED,), ("conflict", "Case closed")),
}


@pytest.mark.parametrize("name", list(CASES))
def test_supervision_rules(name: str) -> None:
    given, refused = CASES[name]
    state = SUPERVISION.fold("C1", history("C1", *given))
    if refused is None:
        assert list(SUPERVISION.decide(state, Issue(NOTICE))) == [NOTICE]
        return
    with pytest.raises(Refusal) as exc:
        SUPERVISION.decide(state, Issue(NOTICE))
    assert (exc.value.kind, exc.value.title) == refused
