"""A finding (读网纠错): the county office reads the site and reports an error it found.

The notice (§3, daily reading and error correction): the county office reads the platform
every day; an error found is reported to the unit, which corrects it; wrong information that
was published is a violation against those responsible. As a decider:

* **report** — names the post or the publication it was found on (at least one); records
  ``FindingReported``. The finding's id comes from the command id: a retry records nothing.
* **confirm** — only a reported finding that is still open (neither resolved by the unit's
  revision or removal nor confirmed already) can be confirmed; records ``FindingConfirmed``,
  which accountability's fold turns into a ``wrong_information`` violation.

The unit's answer (``FindingResolved``) is not a command: the fold records it when a revision
or removal of the post or publication reaches the log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from gongkai.decider import Decider
from gongkai.events import EventPayload
from gongkai.events.contracts.accountability import (
    FindingConfirmed,
    FindingReported,
    FindingResolved,
)
from gongkai.logtypes import RecordedEvent
from gongkai.refusal import Refusal

Status = Literal["none", "reported", "resolved", "confirmed"]


@dataclass(frozen=True)
class FindingState:
    finding_id: str
    status: Status = "none"
    unit: str | None = None
    #: The event that reported it: what a confirmation is caused by.
    reported_event_id: str | None = None


@dataclass(frozen=True)
class Report:
    """What the office found; ``unit`` and ``column`` are those of the post or publication."""

    finding: FindingReported


@dataclass(frozen=True)
class Confirm:
    note: str | None = None


Command = Report | Confirm


def evolve(state: FindingState, rec: RecordedEvent) -> FindingState:
    p = rec.envelope.payload
    if isinstance(p, FindingReported):
        return replace(
            state, status="reported", unit=p.unit, reported_event_id=rec.envelope.event_id
        )
    if isinstance(p, FindingResolved) and state.status == "reported":
        return replace(state, status="resolved")
    if isinstance(p, FindingConfirmed) and state.status == "reported":
        return replace(state, status="confirmed")
    return state


def resolved_by(
    finding_id: str,
    unit: str,
    status: Status,
    *,
    how: Literal["revised", "removed"],
    event_id: str,
) -> FindingResolved | None:
    """读网纠错, the unit's answer: revising the post or removing the publication a finding was
    found on resolves it, with that event as evidence; only while it is still open (reported,
    neither resolved nor confirmed)."""
    if status != "reported":
        return None
    return FindingResolved(finding_id=finding_id, unit=unit, how=how, evidence=(event_id,))


def check_target(post_id: str | None, publication_id: str | None) -> None:
    """A finding is found on something: a post, a publication, or both."""
    if not post_id and not publication_id:
        raise Refusal(
            "invalid", "Invalid finding", "name a post_id or a publication_id", field="post_id"
        )


def decide(state: FindingState, cmd: Command) -> Sequence[EventPayload]:
    if isinstance(cmd, Report):
        f = cmd.finding
        check_target(f.post_id, f.publication_id)
        if state.status != "none":
            raise Refusal("conflict", "Finding exists", f"finding {state.finding_id} exists")
        return [f]
    if state.status == "none" or state.unit is None:
        raise Refusal("not_found", "Not found", f"no finding {state.finding_id!r}")
    if state.status != "reported":
        raise Refusal(
            "conflict", "Finding already answered", f"the finding is {state.status}"
        )
    return [FindingConfirmed(finding_id=state.finding_id, unit=state.unit, note=cmd.note)]


#: The confirmation continues the finding's story: caused by the report, in its correlation.
FINDING: Decider[FindingState, Command] = Decider(
    "finding", FindingState, evolve, decide, follow=True
)


def confirm_command_id(finding_id: str) -> str:
    # One confirmation per finding: a second office person's confirmation finds the first.
    return f"finding-confirmed:{finding_id}"
