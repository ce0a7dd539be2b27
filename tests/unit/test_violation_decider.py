"""整改 as a decider: the county office holds a violation rectified, once.

Given the violation's history, when the office rectifies it, then ``ViolationRectified`` —
or a refusal; through the runner, an automatic rectification recorded first (same command id,
so the same event id) is what a later office request finds.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gongkai.decider import handle
from gongkai.events import SYSTEM_ACTOR, Actor, new_event
from gongkai.events.contracts.accountability import ViolationRecorded, ViolationRectified
from gongkai.memlog import MemoryEventLog
from gongkai.refusal import Refusal
from gongkai_accountability.domain.violation import VIOLATION, Rectify, rectify_command_id
from tests.builders import history

OFFICE = Actor(person="office-supervisor", role="office", unit="county-office")
T0 = datetime(2026, 3, 2, 1, tzinfo=UTC)
RECORDED = ViolationRecorded.model_validate(
    {
        "unit": "finance", "kind": "published_without_review",
        "severity": "serious", "responsible": [], "evidence": ["e1"], "occurred_at": T0,
        "summary": "未经审核发布",
    }
)
AUTO = ViolationRectified(violation_id="V1", unit="finance", how="approved", rectified_at=T0)
RECTIFY = Rectify(("https://x/1",), "已撤下并整改", T0)


CASES = {
    "a recorded violation is rectified by the office": ((RECORDED,), None),
    "an unknown violation is not found": ((), ("not_found", "Not found")),
    "a rectified violation is not rectified again": (
        (RECORDED, AUTO), ("conflict", "Already rectified")
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_rectification_rules(name: str) -> None:
    given, refused = CASES[name]
    state = VIOLATION.fold("V1", history("V1", *given))
    if refused is None:
        (event,) = VIOLATION.decide(state, RECTIFY)
        assert isinstance(event, ViolationRectified)
        assert (event.how, event.unit, event.note) == ("by_office", "finance", "已撤下并整改")
        return
    with pytest.raises(Refusal) as exc:
        VIOLATION.decide(state, RECTIFY)
    assert (exc.value.kind, exc.value.title) == refused


async def test_an_automatic_rectification_first_is_what_the_office_request_finds() -> None:
    log = MemoryEventLog()
    rec = new_event(RECORDED, aggregate_id="V1", actor=SYSTEM_ACTOR, command_id="v",
                    recorded_at=T0)
    await log.append([rec], expected=0)
    auto = new_event(AUTO, aggregate_id="V1", actor=SYSTEM_ACTOR,
                     command_id=rectify_command_id("V1"), recorded_at=T0)
    await log.append([auto], expected=1)
    h = await handle(log, VIOLATION, "V1", RECTIFY, command_id=rectify_command_id("V1"),
                     actor=OFFICE, now=lambda: T0)
    assert h.replayed and h.events[0].payload.how == "approved"
    assert await log.last_sequence() == 2
