"""读网纠错 as a decider: the county office reports what it found and confirms it stands.

Given the finding's history, when the office reports or confirms, then these events — or
this refusal — and through the runner over the in-memory log, a retry records nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pytest

from gongkai.decider import handle
from gongkai.events import Actor
from gongkai.events.contracts.accountability import (
    FindingConfirmed,
    FindingReported,
    FindingResolved,
)
from gongkai.memlog import MemoryEventLog
from gongkai.refusal import Refusal
from gongkai_accountability.domain.finding import (
    FINDING,
    Confirm,
    Report,
    confirm_command_id,
)
from tests.builders import history

OFFICE = Actor(person="office-reader", role="office", unit="county-office")
T0 = datetime(2026, 3, 2, 1, tzinfo=UTC)


def reported(post_id: str | None = "P1", publication_id: str | None = None) -> FindingReported:
    return FindingReported(
        finding_id="F1", unit="finance", kind="typo", post_id=post_id,
        publication_id=publication_id, column="work_news", description="标题有错别字",
        reported_on=date(2026, 3, 2),
    )


RESOLVED = FindingResolved(finding_id="F1", unit="finance", how="revised", evidence=("e",))
CONFIRMED = FindingConfirmed(finding_id="F1", unit="finance")


@dataclass(frozen=True)
class Case:
    name: str
    given: tuple[Any, ...]
    when: Any
    then: tuple[str, ...] = ()
    refused: tuple[str, str] | None = None  # (kind, title)


CASES = (
    Case("a report on a post records it", (), Report(reported()), ("FindingReported",)),
    Case("a report on a publication records it", (),
         Report(reported(None, "pub1")), ("FindingReported",)),
    Case("a report on nothing is refused", (), Report(reported(None, None)),
         refused=("invalid", "Invalid finding")),
    Case("a second report under the same id is refused", (reported(),), Report(reported()),
         refused=("conflict", "Finding exists")),
    Case("an open finding is confirmed", (reported(),), Confirm("属实"), ("FindingConfirmed",)),
    Case("an unknown finding cannot be confirmed", (), Confirm(),
         refused=("not_found", "Not found")),
    Case("a finding the unit resolved cannot be confirmed", (reported(), RESOLVED), Confirm(),
         refused=("conflict", "Finding already answered")),
    Case("a confirmed finding is not confirmed twice", (reported(), CONFIRMED), Confirm(),
         refused=("conflict", "Finding already answered")),
)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_finding_rules(case: Case) -> None:
    state = FINDING.fold("F1", history("F1", *case.given, actor=OFFICE))
    if case.refused is not None:
        with pytest.raises(Refusal) as exc:
            FINDING.decide(state, case.when)
        assert (exc.value.kind, exc.value.title) == case.refused
        return
    assert tuple(p.event_type for p in FINDING.decide(state, case.when)) == case.then


async def test_through_the_runner_a_confirmation_is_recorded_once_and_caused_by_the_report(
) -> None:
    log = MemoryEventLog()
    r = await handle(log, FINDING, "F1", Report(reported()), command_id="k1", actor=OFFICE,
                     now=lambda: T0, new=True)
    for _ in range(2):
        c = await handle(log, FINDING, "F1", Confirm("属实"), command_id=confirm_command_id("F1"),
                         actor=OFFICE, now=lambda: T0)
    assert c.replayed and await log.last_sequence() == 2
    assert c.events[0].causation_id == r.events[0].event_id
    assert c.events[0].payload == FindingConfirmed(finding_id="F1", unit="finance", note="属实")
