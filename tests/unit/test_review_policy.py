"""A unit's review policy as a decider: the leader sets whether the staff stage is always due."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gongkai.decider import handle
from gongkai.events import Actor
from gongkai.events.contracts.review import ReviewPolicySet
from gongkai.memlog import MemoryEventLog
from gongkai_review.domain.policy import DEFAULT, POLICY, SetPolicy

LEADER = Actor(person="finance-leader", role="leader", unit="finance")
T0 = datetime(2026, 3, 2, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("given", "when", "then"),
    [
        (DEFAULT, "always", ["always"]),
        ("always", "always", []),
        ("always", "important_only", ["important_only"]),
        (DEFAULT, "important_only", []),
    ],
    ids=["set always", "already always", "back to important only", "already the default"],
)
def test_policy_rules(given: str, when: str, then: list[str]) -> None:
    events = POLICY.decide(given, SetPolicy("finance", when))  # type: ignore[arg-type]
    assert [e.staff_stage for e in events if isinstance(e, ReviewPolicySet)] == then


async def test_through_the_runner_setting_it_twice_records_once() -> None:
    log = MemoryEventLog()
    for key in ("k1", "k2"):
        await handle(log, POLICY, "finance", SetPolicy("finance", "always"), command_id=key,
                     actor=LEADER, now=lambda: T0)
    assert await log.last_sequence() == 1
