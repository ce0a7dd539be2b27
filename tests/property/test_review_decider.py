"""The review decider under arbitrary command sequences: the notice's rules hold, always.

tests/unit/test_review_chain.py checks each rule with a named case and one invariant test over
one unit's staff. Here the cast spans two units (a leader of the other unit, a maker who is
also a leader, someone with no role), the unit's policy flips, signatures may carry stale or
foreign digests, odd stages, decisions and opinions, and every command is checked at the moment
it is decided:

* only a principal leader of the post's own unit ever concludes a chain as approved, on a
  chain that holds every stage the post needs, all agreeing, all on the current content;
* nobody who made a version of the post approves it (no self-approval); nobody signs a
  stage without the role in the post's unit, or twice on one chain;
* a refused command records nothing; deciding is deterministic (same command, same bytes);
* the state is a pure fold of the log: replaying the recorded events, decoded from their
  bytes, gives the state the decider worked on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from gongkai.events import REGISTRY, Actor, Envelope, new_event
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
    fold,
    queue_entry,
    required_stages,
    waiting_since,
)
from tests.builders import post_submitted


def _entry_by_the_rule(state: ReviewState) -> tuple[str | None, int | None, datetime | None]:
    """The queue's three answers worked out as the rule says them, one by one: the current
    chain, the first required stage it has no signature for, and since when that stage is
    open (the current version's time or the last signature, whichever is later)."""
    chain = current_chain(state)
    if chain is None or state.post is None:
        return None, None, None
    stage = next(
        (s for s in required_stages(state.post, state.staff_stage) if chain.signature(s) is None),
        None,
    )
    if stage is None:
        return None, chain.number, None
    return stage, chain.number, max(
        [state.post.current.at, *(s.signed_at for s in chain.signatures)]
    )

UNIT, OTHER = "finance", "water"
POST = "P1"
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)

ROLES: dict[str, frozenset[tuple[str, str]]] = {
    "maker": frozenset({(UNIT, "maker")}),
    "staff": frozenset({(UNIT, "staff")}),
    "secrecy": frozenset({(UNIT, "secrecy")}),
    "leader": frozenset({(UNIT, "leader")}),
    "deputy": frozenset({(UNIT, "leader"), (UNIT, "staff")}),
    # Makes posts and leads the unit: may never approve a post they made a version of.
    "boss": frozenset({(UNIT, "maker"), (UNIT, "leader")}),
    # The other unit's people: every role, but not here.
    "water-leader": frozenset({(OTHER, "leader"), (OTHER, "staff"), (OTHER, "secrecy")}),
    "mixed": frozenset({(OTHER, "leader"), (UNIT, "staff")}),
    "nobody": frozenset(),
}
PEOPLE = sorted(ROLES)
MAKERS = ["maker", "boss", "deputy"]


@dataclass
class World:
    """The post's log and the state folded from it, as the service keeps them."""

    log: list[Envelope[Any]] = field(default_factory=list)
    state: ReviewState = INITIAL
    clock: int = 0
    version: int = 1

    def now(self) -> datetime:
        self.clock += 1
        return T0 + timedelta(minutes=self.clock)

    def record(self, events: list[Envelope[Any]]) -> None:
        self.log.extend(events)
        self.state = fold(events, self.state)

    def fact(self, payload: Any, person: str, aggregate: str = POST) -> None:
        self.record(
            [
                new_event(
                    payload,
                    aggregate_id=aggregate,
                    actor=Actor(person=person, role="maker", unit=UNIT),
                    command_id=f"fact-{len(self.log)}",
                    recorded_at=self.now(),
                )
            ]
        )


def digest_of(n: int) -> str:
    return f"{n:064x}"


ACTIONS = st.one_of(
    st.tuples(
        st.just("sign"),
        st.sampled_from(PEOPLE),
        st.sampled_from(["staff", "secrecy", "leader", "mayor"]),
        st.sampled_from(["agree", "disagree", "abstain"]),
        st.sampled_from([None, "", "  ", "不同意", "x" * 2001]),
        st.sampled_from(["current", "stale", "foreign"]),
    ),
    # The awaited stage, signed by someone holding it here: random signatures alone rarely get
    # a chain to its end, and the approval rules are what matter most.
    st.tuples(st.just("advance"), st.integers(0, 5), st.sampled_from(["agree"] * 4 + ["disagree"])),
    st.tuples(st.just("advance"), st.integers(0, 5), st.just("agree")),
    st.tuples(st.just("revise"), st.sampled_from(MAKERS), st.booleans()),
    st.tuples(st.just("policy"), st.sampled_from(["important_only", "always"])),
    st.tuples(st.just("void")),
    st.tuples(st.just("withdraw"), st.sampled_from(MAKERS)),
)


def sign_command(world: World, action: tuple[Any, ...]) -> Sign:
    _, person, stage, decision, opinion, which = action
    post = world.state.post
    assert post is not None
    digest = {
        "current": post.content_digest,
        "stale": post.versions[0].content_digest,
        "foreign": "f" * 64,
    }[which]
    return Sign(
        post_id=POST,
        stage=stage,
        decision=decision,
        opinion=opinion,
        content_digest=digest,
        signer_id=person,
        signer_roles=ROLES[person],
        meta=Meta(command_id=f"cmd-{len(world.log)}-{person}", at=world.now()),
    )


def check_decision(before: ReviewState, cmd: Sign, events: list[Envelope[Any]]) -> None:
    """What a set of events decided for ``cmd`` may contain, judged on the state before it."""
    post = before.post
    assert post is not None
    for e in events:
        assert e.aggregate_id == POST
        p = e.payload
        if isinstance(p, ReviewSigned):
            assert p.signer.person == cmd.signer_id and e.actor == p.signer
            assert (post.unit, p.stage) in ROLES[p.signer.person], "signed without the role"
            assert p.signer.unit == post.unit, "signed for another unit"
            assert p.content_digest == post.content_digest, "a signature binds current content"
        if isinstance(p, ReviewConcluded) and p.outcome == "approved":
            assert e.actor.role == "leader", "only the principal leader concludes approval"
            assert (post.unit, "leader") in ROLES[e.actor.person]
            assert e.actor.person not in post.makers, "no self-approval"
            assert p.content_digest == post.content_digest
            stages = [s.stage for s in p.signatures]
            assert stages[-1] == "leader"
            assert set(required_stages(post, before.staff_stage)) <= set(stages)
            assert all(s.decision == "agree" for s in p.signatures)
            assert {s.content_digest for s in p.signatures} == {post.content_digest}
            people = [s.signer.person for s in p.signatures]
            assert len(people) == len(set(people)), "nobody signs twice on one chain"
        if isinstance(p, ReviewConcluded) and p.outcome == "rejected":
            assert p.signatures[-1].decision == "disagree" and p.reason


def advance(world: World, action: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """The "sign" action for the awaited stage by the n-th holder of that stage's role."""
    _, n, decision = action
    stage = awaiting(world.state)
    if stage is None:
        return None
    holders = [p for p in PEOPLE if (UNIT, stage) in ROLES[p]]
    opinion = "不同意" if decision == "disagree" else None
    return ("sign", holders[n % len(holders)], stage, decision, opinion, "current")


def step(world: World, action: tuple[Any, ...]) -> None:
    kind = action[0]
    post = world.state.post
    live = post is not None and not post.withdrawn
    if kind == "advance":
        signing = advance(world, action)
        if signing is None:
            return
        action, kind = signing, "sign"
    if kind == "sign":
        cmd = sign_command(world, action)
        before = world.state
        try:
            events = decide(cmd, before)
        except Refusal as refusal:
            assert refusal.kind in ("unknown_post", "invalid", "forbidden", "conflict")
            assert world.state is before  # a refusal records nothing
            return
        again = decide(cmd, before)
        assert [e.to_json() for e in again] == [e.to_json() for e in events], "deterministic"
        check_decision(before, cmd, events)
        world.record(events)
    elif kind == "revise" and live:
        world.version += 1
        world.fact(
            PostRevised(
                unit=UNIT,
                title=f"v{world.version}",
                body="正文",
                information_date=date(2026, 3, 1),
                content_version=world.version,
                content_digest=digest_of(world.version),
                screening=Screening(needs_secrecy_review=action[2]),
            ),
            action[1],
        )
    elif kind == "policy":
        world.fact(ReviewPolicySet(unit=UNIT, staff_stage=action[1]), "leader", aggregate=UNIT)
    elif kind == "void":
        world.record(decide(VoidStale(POST, at=world.now()), world.state))
    elif kind == "withdraw" and live:
        world.fact(PostWithdrawn(unit=UNIT, reason="superseded"), action[1])


@settings(max_examples=300, deadline=None)
@given(
    maker=st.sampled_from(MAKERS),
    kind=st.sampled_from([None, "normative_document", "announcement"]),
    unsure=st.booleans(),
    flagged=st.booleans(),
    actions=st.lists(ACTIONS, max_size=25),
)
def test_any_command_sequence_keeps_the_rules(
    maker: str, kind: Any, unsure: bool, flagged: bool, actions: list[tuple[Any, ...]]
) -> None:
    world = World()
    world.fact(
        post_submitted(
            unit=UNIT,
            title="关于印发某办法的通知",
            body="正文",
            important_kind=kind,
            maker_unsure=unsure,
            content_digest=digest_of(1),
            screening=Screening(needs_secrecy_review=flagged),
        ),
        maker,
    )
    for action in actions:
        step(world, action)
        # The queue's row asks the three questions at once: the rule's answers, asked apart.
        assert queue_entry(world.state) == _entry_by_the_rule(world.state)
        assert awaiting(world.state) == queue_entry(world.state)[0]
        assert waiting_since(world.state) == queue_entry(world.state)[2]
        # One open chain at most, numbered 1..n, each on one content.
        chains = world.state.chains
        assert [c.number for c in chains] == list(range(1, len(chains) + 1))
        assert all(c.outcome is not None for c in chains[:-1])
        for c in chains:
            assert {s.content_digest for s in c.signatures} <= {c.content_digest}
            assert [o.outcome for o in c.conclusions] in (
                [],
                ["approved"],
                ["rejected"],
                ["voided"],
                ["approved", "voided"],
            )
    outcomes = sorted({o.outcome for c in world.state.chains for o in c.conclusions})
    event(f"outcomes: {','.join(outcomes) or 'none'}")  # coverage, see --hypothesis-show-statistics
    # Replay from the bytes on the log: the same state, whatever order of folds produced it.
    replayed = fold(REGISTRY.decode(e.to_json(), subject_type=e.type) for e in world.log)
    assert replayed == world.state
    # After a withdrawal nothing can be signed.
    post = world.state.post
    assert post is not None
    if post.withdrawn:
        assert current_chain(world.state) is None
