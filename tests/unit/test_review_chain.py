"""The review decider, rule by rule, without NATS: decide(command, state) -> events."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import count
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gongkai.events import SYSTEM_ACTOR, Actor, Envelope, new_event
from gongkai.events.contracts.intake import PostRevised, PostWithdrawn, Screening
from gongkai.events.contracts.review import ReviewConcluded, ReviewPolicySet, ReviewSigned
from gongkai_review.domain.chain import (
    INITIAL,
    Meta,
    Refusal,
    ReviewState,
    Sign,
    VoidStale,
    awaiting,
    current_chain,
    decide,
    evolve,
    fold,
    may_sign,
    pending_void,
    required_stages,
    status,
    waiting_since,
)
from tests.builders import post_submitted

UNIT = "finance"
POST = "P1"
D1, D2, D3 = "1" * 64, "2" * 64, "3" * 64
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
MAKER, MAKER2 = "maker", "maker2"
STAFF, SECRECY, LEADER, LEADER2 = "staff1", "secrecy1", "leader1", "leader2"

ROLES: dict[str, frozenset[tuple[str, str]]] = {
    MAKER: frozenset({(UNIT, "maker")}),
    MAKER2: frozenset({(UNIT, "maker"), (UNIT, "leader")}),
    STAFF: frozenset({(UNIT, "staff")}),
    SECRECY: frozenset({(UNIT, "secrecy")}),
    LEADER: frozenset({(UNIT, "leader")}),
    LEADER2: frozenset({(UNIT, "leader"), (UNIT, "staff")}),
    "outsider": frozenset({("water", "leader"), ("water", "staff")}),
    # A maker who is also a leader of the unit: may still not approve their own post.
    "boss": frozenset({(UNIT, "maker"), (UNIT, "leader")}),
}

_seq = count(1)


def _env(
    payload: Any, aggregate: str = POST, person: str = MAKER, minutes: int = 0
) -> Envelope[Any]:
    return new_event(
        payload,
        aggregate_id=aggregate,
        actor=Actor(person=person, role="maker", unit=UNIT),
        command_id=f"c{next(_seq)}",
        recorded_at=T0 + timedelta(minutes=minutes),
    )


def submitted(
    kind: str | None = None,
    *,
    unsure: bool = False,
    flagged: bool = False,
    maker: str = MAKER,
) -> Envelope[Any]:
    return _env(
        post_submitted(
            unit=UNIT,
            title="关于印发某办法的通知",
            body="正文",
            important_kind=kind,
            maker_unsure=unsure,
            content_digest=D1,
            screening=Screening(needs_secrecy_review=flagged),
        ),
        person=maker,
    )


def revised(
    version: int = 2, digest: str = D2, *, by: str = MAKER, flagged: bool = False
) -> Envelope[Any]:
    return _env(
        PostRevised(
            unit=UNIT,
            title=f"第{version}版",
            body="改过的正文",
            information_date=date(2026, 3, 1),
            content_version=version,
            content_digest=digest,
            screening=Screening(needs_secrecy_review=flagged),
        ),
        person=by,
        minutes=60 * version,
    )


def withdrawn() -> Envelope[Any]:
    return _env(PostWithdrawn(unit=UNIT, reason="superseded"), minutes=500)


def policy_always() -> Envelope[Any]:
    return _env(ReviewPolicySet(unit=UNIT, staff_stage="always"), aggregate=UNIT)


def sign_cmd(
    person: str,
    stage: str,
    decision: str = "agree",
    opinion: str | None = None,
    digest: str | None = None,
    *,
    state: ReviewState | None = None,
    post_id: str = POST,
    minutes: int = 10,
    command_id: str | None = None,
) -> Sign:
    current = state.post.content_digest if state is not None and state.post else D1
    return Sign(
        post_id=post_id,
        stage=stage,
        decision=decision,
        opinion=opinion,
        content_digest=digest or current,
        signer_id=person,
        signer_roles=ROLES.get(person, frozenset()),
        meta=Meta(
            command_id=command_id or f"sign-{next(_seq)}", at=T0 + timedelta(minutes=minutes)
        ),
    )


def apply(state: ReviewState, cmd: Sign | VoidStale) -> ReviewState:
    return fold(decide(cmd, state), state)


def signed(state: ReviewState, person: str, stage: str, decision: str = "agree") -> ReviewState:
    opinion = "不同意发布" if decision == "disagree" else None
    return apply(state, sign_cmd(person, stage, decision, opinion, state=state))


def void(state: ReviewState) -> ReviewState:
    return apply(state, VoidStale(POST, at=T0 + timedelta(days=1)))


# ---- which stages a chain needs -----------------------------------------------------------


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        ([submitted()], ("leader",)),
        ([submitted("normative_document")], ("staff", "leader")),
        ([submitted("announcement")], ("staff", "leader")),
        ([submitted("major_decision")], ("staff", "leader")),
        ([submitted(flagged=True)], ("secrecy", "leader")),
        ([submitted(unsure=True)], ("secrecy", "leader")),
        ([submitted("normative_document", flagged=True)], ("staff", "secrecy", "leader")),
        ([policy_always(), submitted()], ("staff", "leader")),
        ([submitted(), policy_always()], ("staff", "leader")),
        # A revision's screening replaces the submission's: a new flag adds the secrecy stage.
        ([submitted(), revised(flagged=True)], ("secrecy", "leader")),
    ],
    ids=[
        "plain",
        "normative",
        "announcement",
        "major-decision",
        "screening-flag",
        "maker-unsure",
        "normative-flagged",
        "unit-policy-always",
        "policy-after-submission",
        "flag-on-revision",
    ],
)
def test_required_stages(history: list[Envelope[Any]], expected: tuple[str, ...]) -> None:
    state = fold(history)
    assert state.post is not None
    assert required_stages(state.post, state.staff_stage) == expected
    assert awaiting(state) == expected[0]


# ---- signatures that record -----------------------------------------------------------------


@dataclass
class Accepted:
    name: str
    history: list[Envelope[Any]]
    before: list[tuple[str, str]]  # (person, stage) signed before the command
    person: str
    stage: str
    decision: str = "agree"
    opinion: str | None = None
    types: list[str] = field(default_factory=lambda: ["ReviewSigned"])
    outcome: str | None = None
    chain: int = 1


ACCEPTED = [
    Accepted(
        "leader-approves-plain",
        [submitted()],
        [],
        LEADER,
        "leader",
        types=["ReviewSigned", "ReviewConcluded"],
        outcome="approved",
    ),
    Accepted("staff-first-on-normative", [submitted("normative_document")], [], STAFF, "staff"),
    Accepted(
        "leader-after-staff-on-normative",
        [submitted("normative_document")],
        [(STAFF, "staff")],
        LEADER,
        "leader",
        types=["ReviewSigned", "ReviewConcluded"],
        outcome="approved",
    ),
    Accepted(
        "secrecy-after-staff",
        [submitted("announcement", flagged=True)],
        [(STAFF, "staff")],
        SECRECY,
        "secrecy",
    ),
    Accepted("optional-staff-on-plain", [submitted()], [], STAFF, "staff"),
    Accepted(
        "optional-staff-then-leader",
        [submitted()],
        [(STAFF, "staff")],
        LEADER,
        "leader",
        types=["ReviewSigned", "ReviewConcluded"],
        outcome="approved",
    ),
    Accepted(
        "staff-disagrees",
        [submitted("normative_document")],
        [],
        STAFF,
        "staff",
        "disagree",
        "统计数据有误",
        types=["ReviewSigned", "ReviewConcluded"],
        outcome="rejected",
    ),
    Accepted(
        "secrecy-disagrees",
        [submitted(unsure=True)],
        [],
        SECRECY,
        "secrecy",
        "disagree",
        "涉及内部事项",
        types=["ReviewSigned", "ReviewConcluded"],
        outcome="rejected",
    ),
    Accepted(
        "leader-disagrees",
        [submitted()],
        [],
        LEADER,
        "leader",
        "disagree",
        "暂缓发布",
        types=["ReviewSigned", "ReviewConcluded"],
        outcome="rejected",
    ),
    Accepted(
        "maker-may-give-staff-opinion",
        [submitted("normative_document", maker=LEADER2)],
        [],
        LEADER2,
        "staff",
    ),
]


def _history_state(case: Accepted) -> ReviewState:
    state = fold(case.history)
    for person, stage in case.before:
        state = signed(state, person, stage)
    return state


@pytest.mark.parametrize("case", ACCEPTED, ids=lambda c: c.name)
def test_signature_records(case: Accepted) -> None:
    state = _history_state(case)
    cmd = sign_cmd(case.person, case.stage, case.decision, case.opinion, state=state)
    events = decide(cmd, state)
    assert [e.type for e in events] == case.types
    sig = events[0].payload
    assert isinstance(sig, ReviewSigned)
    assert (sig.stage, sig.decision, sig.chain) == (case.stage, case.decision, case.chain)
    assert sig.signer == Actor(person=case.person, role=case.stage, unit=UNIT)
    assert sig.content_digest == D1 and sig.content_version == 1
    assert events[0].actor == sig.signer
    if case.outcome is not None:
        done = events[-1].payload
        assert isinstance(done, ReviewConcluded)
        assert done.outcome == case.outcome
        assert done.content_digest == D1
        # The conclusion lists the whole chain, the new signature included, with its event id.
        assert [s.stage for s in done.signatures] == [s for _, s in case.before] + [case.stage]
        assert done.signatures[-1].event_id == events[0].event_id
        assert events[-1].causation_id == events[0].event_id
        if case.outcome == "rejected":
            assert done.reason == case.opinion
    after = fold(events, state)
    assert status(after) == ("in_review" if case.outcome is None else case.outcome)


def test_rejection_then_revision_starts_a_new_chain() -> None:
    state = signed(fold([submitted("normative_document")]), STAFF, "staff", "disagree")
    assert status(state) == "rejected" and current_chain(state) is None
    with pytest.raises(Refusal) as exc:
        decide(sign_cmd(STAFF, "staff", state=state), state)
    assert (exc.value.kind, exc.value.field) == ("conflict", "stage")
    assert "revise" in exc.value.detail
    state = evolve(state, revised())
    assert pending_void(state) is None, "a rejected chain is already over; nothing to void"
    assert decide(VoidStale(POST, at=T0), state) == []
    chain = current_chain(state)
    assert chain is not None and chain.number == 2 and chain.content_digest == D2
    # The same staff member may give an opinion again: it is a new chain.
    state = signed(state, STAFF, "staff")
    events = decide(sign_cmd(LEADER, "leader", state=state), state)
    done = events[-1].payload
    assert isinstance(done, ReviewConcluded)
    assert (done.chain, done.outcome, done.content_digest, done.content_version) == (
        2,
        "approved",
        D2,
        2,
    )


# ---- signatures that are refused ------------------------------------------------------------


@dataclass
class Refused:
    name: str
    history: list[Envelope[Any]]
    before: list[tuple[str, str]]
    person: str
    stage: str
    kind: str
    field: str | None
    decision: str = "agree"
    opinion: str | None = None
    digest: str | None = None
    says: str = ""
    post_id: str = POST


REFUSED = [
    Refused("unknown-post", [], [], LEADER, "leader", "not_found", "id", says="no post"),
    Refused("unknown-stage", [submitted()], [], LEADER, "approver", "invalid", "stage"),
    Refused(
        "bad-decision", [submitted()], [], LEADER, "leader", "invalid", "decision", decision="ok"
    ),
    Refused(
        "disagree-without-opinion",
        [submitted()],
        [],
        LEADER,
        "leader",
        "invalid",
        "opinion",
        decision="disagree",
    ),
    Refused(
        "disagree-with-blank-opinion",
        [submitted()],
        [],
        LEADER,
        "leader",
        "invalid",
        "opinion",
        decision="disagree",
        opinion="   ",
    ),
    Refused(
        "opinion-too-long",
        [submitted()],
        [],
        LEADER,
        "leader",
        "invalid",
        "opinion",
        opinion="字" * 2001,
    ),
    Refused(
        "digest-not-current",
        [submitted()],
        [],
        LEADER,
        "leader",
        "conflict",
        "content_digest",
        digest=D3,
        says="current content",
    ),
    Refused(
        "old-digest-after-revision",
        [submitted(), revised()],
        [],
        LEADER,
        "leader",
        "conflict",
        "content_digest",
        digest=D1,
        says="version 2",
    ),
    Refused(
        "no-role-in-unit", [submitted()], [], STAFF, "leader", "forbidden", "stage", says="finance"
    ),
    # Another unit's person is refused first, whatever else is wrong, and told nothing of the
    # post: not its unit, not its digest (which a wrong digest used to get back in a 409).
    Refused(
        "signer-from-another-unit",
        [submitted()],
        [],
        "outsider",
        "leader",
        "forbidden",
        "id",
        says="its unit's people",
    ),
    Refused(
        "another-unit-with-a-wrong-digest",
        [submitted(), revised()],
        [],
        "outsider",
        "leader",
        "forbidden",
        "id",
        digest=D1,
        says="its unit's people",
    ),
    Refused(
        "another-unit-with-a-bad-stage",
        [submitted()],
        [],
        "outsider",
        "approver",
        "forbidden",
        "id",
        decision="ok",
    ),
    Refused("nobody-with-no-role", [submitted()], [], "nobody", "leader", "forbidden", "id"),
    Refused(
        "self-approval",
        [submitted(maker="boss")],
        [],
        "boss",
        "leader",
        "forbidden",
        "stage",
        says="self-approval",
    ),
    Refused(
        "self-approval-by-a-reviser",
        [submitted(), revised(by="boss")],
        [],
        "boss",
        "leader",
        "forbidden",
        "stage",
        digest=D2,
        says="self-approval",
    ),
    Refused(
        "signs-twice-on-one-chain",
        [submitted("normative_document")],
        [(LEADER2, "staff")],
        LEADER2,
        "leader",
        "forbidden",
        "stage",
        says="already signed chain 1",
    ),
    Refused(
        "leader-before-required-staff",
        [submitted("normative_document")],
        [],
        LEADER,
        "leader",
        "conflict",
        "stage",
        says="waiting for the staff opinion",
    ),
    Refused(
        "leader-before-secrecy",
        [submitted(flagged=True)],
        [],
        LEADER,
        "leader",
        "conflict",
        "stage",
        says="waiting for the secrecy review",
    ),
    Refused(
        "secrecy-before-required-staff",
        [submitted("normative_document", unsure=True)],
        [],
        SECRECY,
        "secrecy",
        "conflict",
        "stage",
        says="waiting for the staff opinion",
    ),
    Refused(
        "secrecy-not-part-of-chain",
        [submitted()],
        [],
        SECRECY,
        "secrecy",
        "conflict",
        "stage",
        says="not part of this chain",
    ),
    Refused(
        "optional-staff-after-secrecy",
        [submitted(flagged=True)],
        [(SECRECY, "secrecy")],
        STAFF,
        "staff",
        "conflict",
        "stage",
        says="already been given",
    ),
    Refused(
        "stage-already-signed",
        [submitted("normative_document")],
        [(STAFF, "staff")],
        LEADER2,
        "staff",
        "conflict",
        "stage",
        says="already signed",
    ),
    Refused(
        "chain-already-approved",
        [submitted()],
        [(LEADER, "leader")],
        LEADER2,
        "leader",
        "conflict",
        "stage",
        says="already approved",
    ),
    Refused("withdrawn-post", [submitted(), withdrawn()], [], LEADER, "leader", "conflict", "id"),
    Refused(
        "policy-always-requires-staff",
        [policy_always(), submitted()],
        [],
        LEADER,
        "leader",
        "conflict",
        "stage",
        says="staff opinion",
    ),
]


@pytest.mark.parametrize("case", REFUSED, ids=lambda c: c.name)
def test_signature_refused(case: Refused) -> None:
    state = fold(case.history)
    for person, stage in case.before:
        state = signed(state, person, stage)
    cmd = sign_cmd(
        case.person,
        case.stage,
        case.decision,
        case.opinion,
        case.digest,
        state=state,
        post_id=case.post_id,
    )
    with pytest.raises(Refusal) as exc:
        decide(cmd, state)
    assert (exc.value.kind, exc.value.field) == (case.kind, case.field), exc.value.detail
    assert case.says in exc.value.detail
    if (case.kind, case.field) == ("forbidden", "id"):
        for secret in ("finance", D1, D2):
            assert secret not in exc.value.detail, "a stranger is told nothing of the post"


# ---- binding to content: revisions and withdrawals void -------------------------------------


@dataclass
class Voiding:
    name: str
    history: list[Envelope[Any]]
    before: list[tuple[str, str]]
    change: Callable[[], Envelope[Any]]
    voids: bool
    reason: str = ""
    next_chain: int | None = 2


VOIDING = [
    Voiding(
        "revision-after-approval", [submitted()], [(LEADER, "leader")], revised, True, "version 2"
    ),
    Voiding(
        "revision-after-staff-signature",
        [submitted("normative_document")],
        [(STAFF, "staff")],
        revised,
        True,
        "version 2",
    ),
    Voiding("revision-before-any-signature", [submitted()], [], revised, False, next_chain=1),
    Voiding(
        "withdrawal-after-approval",
        [submitted()],
        [(LEADER, "leader")],
        withdrawn,
        True,
        "withdrawn: superseded",
        next_chain=None,
    ),
    Voiding(
        "withdrawal-mid-chain",
        [submitted("announcement")],
        [(STAFF, "staff")],
        withdrawn,
        True,
        "withdrawn",
        next_chain=None,
    ),
    Voiding("withdrawal-unsigned", [submitted()], [], withdrawn, False, next_chain=None),
]


@pytest.mark.parametrize("case", VOIDING, ids=lambda c: c.name)
def test_changes_void_the_chain(case: Voiding) -> None:
    state = fold(case.history)
    for person, stage in case.before:
        state = signed(state, person, stage)
    change = case.change()
    state = evolve(state, change)
    events = decide(VoidStale(POST, at=T0 + timedelta(days=1)), state)
    if not case.voids:
        assert events == []
    else:
        assert [e.type for e in events] == ["ReviewConcluded"]
        done = events[0].payload
        assert isinstance(done, ReviewConcluded)
        assert (done.chain, done.outcome, done.content_digest) == (1, "voided", D1)
        assert case.reason in (done.reason or "")
        assert [s.stage for s in done.signatures] == [s for _, s in case.before]
        assert events[0].actor == SYSTEM_ACTOR
        # Caused by the change that overtook the chain, in that change's correlation.
        assert events[0].causation_id == change.event_id
        assert events[0].correlation_id == change.correlation_id
        # Deciding again on the same state gives the same event id: a racing twin dedups.
        again = decide(VoidStale(POST, at=T0 + timedelta(days=2)), state)
        assert again[0].event_id == events[0].event_id
        state = fold(events, state)
        assert decide(VoidStale(POST, at=T0), state) == [], "voiding is idempotent"
    chain = current_chain(state)
    assert (chain.number if chain else None) == case.next_chain
    if chain is not None:
        assert chain.content_digest == D2 and chain.signatures == ()


def test_signature_settles_a_pending_void_in_the_same_command() -> None:
    state = signed(fold([submitted()]), LEADER, "leader")
    state = evolve(state, revised())
    assert status(state) == "in_review", "an approval of old content no longer stands"
    events = decide(sign_cmd(LEADER, "leader", state=state), state)
    assert [(e.type, e.payload.chain) for e in events] == [
        ("ReviewConcluded", 1),
        ("ReviewSigned", 2),
        ("ReviewConcluded", 2),
    ]
    assert [e.payload.outcome for e in events if isinstance(e.payload, ReviewConcluded)] == [
        "voided",
        "approved",
    ]
    # The void has the id the reaction would give it, so the two paths cannot both record.
    reaction = decide(VoidStale(POST, at=T0), state)
    assert reaction[0].event_id == events[0].event_id
    final = fold(events, state)
    assert [c.outcome for c in final.chains] == ["voided", "approved"]
    assert [o.outcome for o in final.chains[0].conclusions] == ["approved", "voided"]


def test_a_command_is_deterministic() -> None:
    state = fold([submitted()])
    cmd = sign_cmd(LEADER, "leader", state=state, command_id="fixed")
    first, second = decide(cmd, state), decide(cmd, state)
    assert [e.event_id for e in first] == [e.event_id for e in second]
    assert [e.to_json() for e in first] == [e.to_json() for e in second]


# ---- work-queue queries ---------------------------------------------------------------------


def test_queue_membership_and_waiting_time() -> None:
    state = fold([submitted("normative_document", maker="boss")])
    assert waiting_since(state) == T0
    assert may_sign(state, STAFF, ROLES[STAFF]) == "staff"
    assert may_sign(state, LEADER, ROLES[LEADER]) is None, "the leader waits for staff first"
    assert may_sign(state, "outsider", ROLES["outsider"]) is None
    state = signed(state, LEADER2, "staff")
    assert waiting_since(state) == T0 + timedelta(minutes=10)
    assert may_sign(state, LEADER, ROLES[LEADER]) == "leader"
    assert may_sign(state, "boss", ROLES["boss"]) is None, "never in one's own approval queue"
    assert may_sign(state, LEADER2, ROLES[LEADER2]) is None, "already signed this chain"
    state = signed(state, LEADER, "leader")
    assert awaiting(state) is None and waiting_since(state) is None


def test_state_survives_json_for_the_read_model() -> None:
    state = fold([policy_always(), submitted("announcement", flagged=True)])
    state = signed(signed(state, STAFF, "staff"), SECRECY, "secrecy")
    assert ReviewState.model_validate_json(state.model_dump_json()) == state
    assert INITIAL.post is None and status(INITIAL) is None


# ---- invariants under any sequence of commands --------------------------------------------

ACTIONS = st.one_of(
    st.tuples(
        st.just("sign"),
        st.sampled_from(sorted(ROLES)),
        st.sampled_from(["staff", "secrecy", "leader"]),
        st.sampled_from(["agree", "disagree"]),
    ),
    st.tuples(st.just("revise"), st.sampled_from([MAKER, MAKER2, "boss"])),
    st.tuples(st.just("void")),
    st.tuples(st.just("withdraw")),
)


@settings(max_examples=150, deadline=None)
@given(
    kind=st.sampled_from([None, "normative_document"]),
    flagged=st.booleans(),
    actions=st.lists(ACTIONS, max_size=14),
)
def test_invariants_hold_for_any_history(
    kind: str | None, flagged: bool, actions: list[tuple[str, ...]]
) -> None:
    state = fold([submitted(kind, flagged=flagged)])
    version = 1
    for action in actions:
        if action[0] == "sign":
            _, person, stage, decision = action
            opinion = "意见" if decision == "disagree" else None
            with contextlib.suppress(Refusal):  # refusals record nothing: state unchanged
                state = apply(state, sign_cmd(person, stage, decision, opinion, state=state))
        elif action[0] == "revise" and state.post and not state.post.withdrawn:
            version += 1
            state = evolve(
                state, revised(version, f"{version:064x}", by=action[1], flagged=flagged)
            )
        elif action[0] == "void":
            state = void(state)
            assert pending_void(state) is None
        elif action[0] == "withdraw" and state.post and not state.post.withdrawn:
            state = evolve(state, withdrawn())
    post = state.post
    assert post is not None
    required = required_stages(post, state.staff_stage)
    assert [c.number for c in state.chains] == list(range(1, len(state.chains) + 1))
    assert all(c.outcome is not None for c in state.chains[:-1]), "one open chain at most"
    for chain in state.chains:
        digests = {s.content_digest for s in chain.signatures}
        assert digests == {chain.content_digest}, "a chain approves exactly one content"
        signers = [s.signer.person for s in chain.signatures]
        assert len(signers) == len(set(signers)), "nobody signs twice on one chain"
        for s in chain.signatures:
            assert (post.unit, s.stage) in ROLES[s.signer.person]
        outcomes = [c.outcome for c in chain.conclusions]
        assert outcomes in ([], ["approved"], ["rejected"], ["voided"], ["approved", "voided"])
        if "approved" in outcomes:
            stages = [s.stage for s in chain.signatures]
            assert stages[-1] == "leader" and all(s.decision == "agree" for s in chain.signatures)
            if chain.content_version == post.content_version:
                # Makers only accumulate: someone who revised the post after approving an
                # earlier version did not approve their own work.
                assert chain.signatures[-1].signer.person not in post.makers, "no self-approval"
            # Only stages required when the chain's content was current can be missing later.
            if chain.content_version == post.content_version:
                assert set(required) <= set(stages)
        if "rejected" in outcomes:
            assert chain.signatures[-1].decision == "disagree"
