"""The work-queue read model on SQLite: what each person may sign, and a rebuild that matches."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gongkai.eventlog import RecordedEvent
from gongkai.events import SYSTEM_ACTOR, Actor, Envelope, new_event
from gongkai.events.contracts.intake import RoleGranted, RoleRevoked
from gongkai.events.contracts.review import ReviewConcluded, ReviewSigned
from gongkai.projection import ProjectionStore, make_engine
from gongkai_review.adapters.queue import ReviewQueueProjection, waiting_for
from gongkai_review.bootstrap import OVERDUE_ENV, config_from_env
from gongkai_review.domain.chain import ReviewState, decide, fold, fold_checked
from gongkai_review.domain.reading import masked
from tests.unit.test_review_chain import (
    LEADER,
    LEADER2,
    POST,
    ROLES,
    STAFF,
    T0,
    UNIT,
    policy_always,
    revised,
    sign_cmd,
    submitted,
)


def role_event(
    person: str, unit: str, role: str, at: datetime, *, revoke: bool = False
) -> Envelope[Any]:
    """A directory change by the platform's own tools (unit ``system``), dated ``at``."""
    payload = (RoleRevoked if revoke else RoleGranted)(
        person_id=person, unit=unit, role=role  # type: ignore[arg-type]
    )
    verb = "revoke" if revoke else "grant"
    return new_event(
        payload,
        aggregate_id=person,
        actor=SYSTEM_ACTOR,
        command_id=f"{verb}-{person}-{unit}-{role}-{at.isoformat()}",
        business_time=at,
        recorded_at=at,
    )


def directory() -> list[Envelope[Any]]:
    """Everyone in ``ROLES`` holds their roles from the day before the posts."""
    return [
        role_event(person, unit, role, T0 - timedelta(days=1))
        for person, roles in sorted(ROLES.items())
        for unit, role in sorted(roles)
    ]


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
    """The directory, a normative document signed by staff, then a plain post."""
    log: list[Envelope[Any]] = [*directory(), submitted("normative_document")]
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


# ---- a signature moves a post only with its signer's authority (issue 14, item 3) -------------

#: A staff member whose role ended before the signature, and one whose role begins after it
#: (the grant is in the log first, dated later: authority is judged at the business time).
FORMER, NEWCOMER = "former-staff", "new-staff"


def more_roles() -> list[Envelope[Any]]:
    return [
        role_event(FORMER, UNIT, "staff", T0 - timedelta(days=2)),
        role_event(FORMER, UNIT, "staff", T0, revoke=True),
        role_event(NEWCOMER, UNIT, "staff", T0 + timedelta(days=1)),
    ]


def misused_key(state: ReviewState, person: str, stage: str, minutes: int) -> list[Envelope[Any]]:
    """A signature as review records it, and for the leader the approval it concludes, whatever
    the directory says: what review's own key (misused, or a bug) puts in the log."""
    post = state.post
    assert post is not None
    signer = Actor(person=person, role=stage, unit=UNIT)
    at = T0 + timedelta(minutes=minutes)
    command = f"misused-{person}-{stage}"
    digest, version = post.content_digest, post.content_version
    signed = new_event(
        ReviewSigned(
            post_id=POST, chain=1, stage=stage, decision="agree",  # type: ignore[arg-type]
            signer=signer, content_digest=digest, content_version=version,
        ),
        aggregate_id=POST, actor=signer, command_id=command, recorded_at=at,
    )
    if stage != "leader":
        return [signed]
    approved = new_event(
        ReviewConcluded(
            post_id=POST, chain=1, outcome="approved", content_digest=digest,
            content_version=version, signatures=fold([signed], state).chains[-1].signatures,
        ),
        aggregate_id=POST, actor=signer, command_id=command, index=1, recorded_at=at,
        causation_id=signed.event_id,
    )
    return [signed, approved]


@pytest.mark.parametrize(
    ("signer", "stage", "why"),
    [
        ("outsider", "staff", "did not hold the staff role in finance"),
        (FORMER, "staff", "did not hold the staff role in finance"),
        (NEWCOMER, "staff", "did not hold the staff role in finance"),
        ("boss", "leader", "made post P1 and may not approve it"),
    ],
    ids=["role-in-another-unit", "role-revoked-before", "role-granted-after", "maker-as-leader"],
)
def test_given_a_signature_without_authority_when_folded_then_the_post_stays_and_an_authorized_one_moves_it(  # noqa: E501
    signer: str, stage: str, why: str
) -> None:
    # Given: the directory (kept by the platform's own tools) and boss's normative document,
    # awaiting `stage` (for the leader, staff has signed).
    given: list[Envelope[Any]] = [
        *directory(), *more_roles(), submitted("normative_document", maker="boss")
    ]
    if stage == "leader":
        given += decide(sign_cmd(STAFF, "staff", state=fold(given)), fold(given))
    state = fold(given)
    unauthorized = misused_key(state, signer, stage, minutes=20)
    holder = LEADER if stage == "leader" else STAFF
    authorized = decide(sign_cmd(holder, stage, state=state, minutes=30), state)
    log = recorded([*given, *unauthorized, *authorized])
    first_refused, first_authorized = len(given), len(given) + len(unauthorized)
    engine = make_engine("sqlite://")
    store = ProjectionStore(engine)
    proj = ReviewQueueProjection()
    store.prepare(proj)

    def row() -> dict[str, Any]:
        return {r["post_id"]: r for r in store.rows(proj.posts)}[POST]

    def queue(person: str) -> list[str]:
        return [s.post.post_id for s in waiting_for(engine, proj, person, ROLES[person]) if s.post]

    store.apply(proj, log[:first_refused])
    before = row()
    assert before["awaiting"] == stage and before["chain"] == 1

    # When: review's key records the signature without authority (and, for the leader, the
    # approval its command concluded), each event in a batch of its own.
    for event in log[first_refused:first_authorized]:
        store.apply(proj, [event])

    # Then: the post has not moved; it still waits for those who may sign the stage, and the
    # projection has caught up past the refused events.
    assert row() == before
    assert POST in queue(holder)
    assert store.checkpoint(proj) == log[first_authorized - 1].seq
    assert [r["seq"] for r in store.rows(proj.refused)] == [log[first_refused].seq]

    # When: a holder of the stage's role signs it.
    store.apply(proj, log[first_authorized:])

    # Then: the post moves on (to the leader; approved, out of every queue).
    after = row()
    assert after["awaiting"] == ("leader" if stage == "staff" else None)
    assert POST not in queue(holder)
    # The queue holds the state GET /posts/{id}/review folds, refusing the same signature.
    grants: dict[str, list[Envelope[Any]]] = defaultdict(list)
    for e in (r.envelope for r in log):
        if isinstance(e.payload, RoleGranted | RoleRevoked):
            grants[e.aggregate_id].append(e)
    checked, refused = fold_checked((r.envelope for r in log), grants)
    assert ReviewState.model_validate_json(after["state"]) == masked(checked)
    assert [e.event_id for e, _ in refused] == [e.event_id for e in unauthorized]
    assert why in refused[0][1]
    live = store.digest(proj)
    store.reset(proj)
    store.apply(proj, log)
    assert store.digest(proj) == live, "a rebuild from sequence 1 gives the same rows"


def test_overdue_threshold_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(OVERDUE_ENV, raising=False)
    assert config_from_env().overdue_after_working_days == 3
    monkeypatch.setenv(OVERDUE_ENV, "5")
    assert config_from_env().overdue_after_working_days == 5
    for bad in ("five", "-1", "2.5"):
        monkeypatch.setenv(OVERDUE_ENV, bad)
        with pytest.raises(ValueError, match=OVERDUE_ENV):
            config_from_env()
