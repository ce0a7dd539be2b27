"""The work-queue read model on SQLite: what each person may sign, and a rebuild that matches."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gongkai.eventlog import RecordedEvent
from gongkai.events import Envelope
from gongkai.projection import ProjectionStore, make_engine
from gongkai_review.adapters.queue import ReviewQueueProjection, waiting_for
from gongkai_review.bootstrap import OVERDUE_ENV, config_from_env
from gongkai_review.domain.chain import decide, fold
from tests.unit.test_review_chain import (
    LEADER,
    LEADER2,
    ROLES,
    STAFF,
    policy_always,
    revised,
    sign_cmd,
    submitted,
)


def recorded(envelopes: list[Envelope[Any]]) -> list[RecordedEvent]:
    return [
        RecordedEvent(
            i,
            f"gk.ev.{e.aggregate_type}.{e.aggregate_id}.{e.type}",
            datetime(2026, 3, 2, tzinfo=UTC),
            e,
            e.to_json(),
        )
        for i, e in enumerate(envelopes, 1)
    ]


def history() -> list[Envelope[Any]]:
    """A normative document signed by staff, then a plain post, then the unit's policy."""
    log: list[Envelope[Any]] = [submitted("normative_document")]
    state = fold(log)
    staff = decide(sign_cmd(STAFF, "staff", state=state), state)
    log += staff
    other = submitted()
    other = other.model_copy(update={"aggregate_id": "P2"})
    log.append(other)
    return log


def test_queue_follows_the_chain_and_the_unit_policy() -> None:
    engine = make_engine("sqlite://")
    store = ProjectionStore(engine)
    proj = ReviewQueueProjection()
    store.prepare(proj)
    log = recorded([*history(), policy_always()])
    store.apply(proj, log[:-1])

    def queue(person: str) -> list[str]:
        states = waiting_for(engine, proj, person, ROLES[person])
        return [s.post.post_id for s in states if s.post]

    # Oldest wait first: P2 waits since its submission, P1 since the staff signature.
    assert queue(LEADER) == ["P2", "P1"]
    assert queue(STAFF) == [], "P1's staff stage is signed; P2 needs no staff opinion"

    store.apply(proj, log[-1:])
    assert queue(STAFF) == ["P2"], "the policy makes P2 wait for the staff opinion"
    assert queue(LEADER) == ["P1"]
    # LEADER2 holds staff and leader: P1 awaits a leader, P2 a staff opinion.
    assert queue(LEADER2) == ["P2", "P1"]

    live = store.digest(proj)
    store.reset(proj)
    store.apply(proj, log)
    assert store.digest(proj) == live, "a rebuild from sequence 1 gives the same rows"
    # Redelivery of applied events changes nothing.
    assert store.apply(proj, log) == 0


def test_a_revision_resets_the_wait_and_the_chain() -> None:
    engine = make_engine("sqlite://")
    store = ProjectionStore(engine)
    proj = ReviewQueueProjection()
    store.prepare(proj)
    change = revised()
    store.apply(proj, recorded([*history(), change]))
    rows = {r["post_id"]: r for r in store.rows(proj.posts)}
    # The staff signature was on version 1: the revision leaves chain 2 waiting for staff.
    assert rows["P1"]["awaiting"] == "staff" and rows["P1"]["chain"] == 2
    assert rows["P1"]["waiting_since"] == change.recorded_at.isoformat()
    assert rows["P2"]["awaiting"] == "leader" and rows["P2"]["chain"] == 1


def test_overdue_threshold_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(OVERDUE_ENV, raising=False)
    assert config_from_env().overdue_after_working_days == 3
    monkeypatch.setenv(OVERDUE_ENV, "5")
    assert config_from_env().overdue_after_working_days == 5
    for bad in ("five", "-1", "2.5"):
        monkeypatch.setenv(OVERDUE_ENV, bad)
        with pytest.raises(ValueError, match=OVERDUE_ENV):
            config_from_env()
