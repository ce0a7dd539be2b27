"""A unit's review policy: whether ordinary posts also need the staff opinion.

The notice asks every post to pass the principal leader; the staff stage (工作机构或者人员审查
意见) is required for important items and, where the unit's leader sets ``always``, for every
post. The policy is the unit's own aggregate (``ReviewPolicySet``); setting it to what it is
records nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gongkai.decider import Decider
from gongkai.events import EventPayload
from gongkai.events.contracts.review import ReviewPolicySet, StaffStagePolicy
from gongkai.logtypes import RecordedEvent

DEFAULT: StaffStagePolicy = "important_only"


@dataclass(frozen=True)
class SetPolicy:
    unit: str
    staff_stage: StaffStagePolicy


def evolve(state: StaffStagePolicy, rec: RecordedEvent) -> StaffStagePolicy:
    p = rec.envelope.payload
    return p.staff_stage if isinstance(p, ReviewPolicySet) else state


def policy_of(history: Iterable[RecordedEvent]) -> StaffStagePolicy:
    state = DEFAULT
    for rec in history:
        state = evolve(state, rec)
    return state


def decide(state: StaffStagePolicy, cmd: SetPolicy) -> Sequence[EventPayload]:
    if state == cmd.staff_stage:
        return []
    return [ReviewPolicySet(unit=cmd.unit, staff_stage=cmd.staff_stage)]


POLICY: Decider[StaffStagePolicy, SetPolicy] = Decider(
    ReviewPolicySet.aggregate_type, lambda _unit: DEFAULT, evolve, decide
)
