"""Same facts, same verdict: accountability's violations do not depend on reaction timing.

A story is a fixed sequence of *facts* — what people and the CMS did (submissions, revisions,
withdrawals, signatures with the conclusion review records in the same batch, publication and
removal reports, role grants and revocations, columns going stale). Around it other services
*react*: review voids a chain a revision or withdrawal overtook (``ReviewConcluded voided``),
freshness reports the column refreshed by a publication (``ColumnRefreshed``), and
accountability itself records what it decided. Where a reaction lands in the log is a matter of
timing; the causal links only say it comes after its cause, and that review settles a void
before the next signature on the same post.

Every order those links allow must give the same violations, naming the same people, with the
same evidence — and so the same digest. The story of issue 13 (approve, revise, the CMS reports
the *old* approved digest online) is checked in every order exhaustively; random stories with
hypothesis, the reactions placed at random allowed positions and accountability's own decisions
taken at random moments.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gongkai.calendar import SHANGHAI, WorkingCalendar
from gongkai.events import Actor, Envelope, EventPayload, new_event
from gongkai.events.contracts.freshness import ColumnRefreshed, ColumnStale
from gongkai.events.contracts.intake import (
    PostPublished,
    PostRevised,
    PostWithdrawn,
    RoleGranted,
    RoleRevoked,
    Screening,
    UnitRegistered,
)
from gongkai.events.contracts.review import ReviewConcluded, ReviewSigned
from gongkai_accountability.domain.decide import Policy, decide
from tests.builders import post_submitted
from tests.property.test_accountability_fold import Log

CAL = WorkingCalendar.default()
POLICY = Policy(notice_after_days=2, deadline_days=5)
START = date(2026, 3, 2)
END = START + timedelta(days=20)
U = "u1"
COLUMN = "administrative_penalties"
SETUP = Actor(person="operator:test", role="operator", unit="system")
CMS = Actor(person="cms", role="office", unit="county-office")
REVIEW = Actor(person="review", role="system", unit="system")
FRESHNESS = Actor(person="freshness", role="system", unit="system")
MAKER = Actor(person="u1-maker", role="maker", unit=U)
LEADERS = ("u1-leader", "u1-deputy")


def at(day: int, minute: int = 0) -> datetime:
    t = datetime.combine(START + timedelta(days=day), time(9), SHANGHAI) + timedelta(minutes=minute)
    return t.astimezone(UTC)


@dataclass
class Event:
    """One event of the story, and what orders it may land in."""

    env: Envelope[Any]
    #: index of the fact it reacts to (None: a fact, in the story's own order)
    cause: int | None = None
    #: a reaction that must land before this fact (review settles a void before a signature)
    before: int | None = None


@dataclass
class Story:
    """Builds facts and the reactions they cause, with the links between them."""

    events: list[Event] = field(default_factory=list)
    n: int = 0
    digest: dict[str, str] = field(default_factory=dict)
    version: dict[str, int] = field(default_factory=dict)
    chain: dict[str, int] = field(default_factory=dict)
    #: post -> (chain, digest, version) of a chain a void will conclude (open or approved)
    voidable: dict[str, tuple[int, str, int]] = field(default_factory=dict)
    #: post -> index of the void reaction not yet followed by a signature
    void_pending: dict[str, int] = field(default_factory=dict)
    stale: dict[str, str] = field(default_factory=dict)  # episode -> stale event id
    published: list[str] = field(default_factory=list)
    withdrawn: set[str] = field(default_factory=set)

    def _env(self, payload: EventPayload, aggregate: str, actor: Actor, day: int,
             index: int = 0, causation: str | None = None) -> Envelope[Any]:
        return new_event(
            payload, aggregate_id=aggregate, actor=actor, command_id=f"c{self.n}", index=index,
            recorded_at=at(day, self.n), causation_id=causation,
        )

    def fact(self, env: Envelope[Any]) -> int:
        self.events.append(Event(env))
        return len(self.events) - 1

    def reaction(self, env: Envelope[Any], cause: int) -> int:
        self.events.append(Event(env, cause=cause))
        return len(self.events) - 1

    # ---- facts -------------------------------------------------------------------------

    def directory(self) -> None:
        self.fact(self._env(UnitRegistered(code=U, name="单位", kind="department",
                                           contact_name="x", contact_mobile="x"), U, SETUP, 0))
        self.n += 1
        for person, role in ((MAKER.person, "maker"), (LEADERS[0], "leader")):
            self.fact(self._env(RoleGranted(person_id=person, unit=U, role=role), person,
                                SETUP, 0))
            self.n += 1

    def submit(self, post: str, day: int, flagged: bool = False) -> None:
        if post in self.digest:
            return
        self.digest[post] = f"{self.n:064x}"
        self.version[post] = 1
        submitted = post_submitted(
            unit=U, column=COLUMN, title="标题", body="正文", information_date=START,
            content_digest=self.digest[post], screening=Screening(needs_secrecy_review=flagged))
        self.fact(self._env(submitted, post, MAKER, day))
        self.n += 1

    def _overtake(self, post: str, cause: int) -> None:
        """A revision or withdrawal: review voids the chain it overtook, some time later."""
        if post not in self.voidable:
            return
        chain, digest, version = self.voidable.pop(post)
        env = new_event(
            ReviewConcluded(post_id=post, chain=chain, outcome="voided", content_digest=digest,
                            content_version=version, reason="revised"),
            aggregate_id=post, actor=REVIEW, command_id=f"void:{post}:{chain}",
            recorded_at=self.events[cause].env.recorded_at,
            causation_id=self.events[cause].env.event_id,
        )
        self.void_pending[post] = self.reaction(env, cause)

    def revise(self, post: str, day: int) -> None:
        if post not in self.digest or post in self.withdrawn:
            return
        self.digest[post] = f"{self.n + 10**6:064x}"
        self.version[post] += 1
        i = self.fact(self._env(PostRevised(
            unit=U, title="标题", body=f"正文{self.n}", information_date=START,
            content_version=self.version[post], content_digest=self.digest[post]),
            post, MAKER, day))
        self.n += 1
        self._overtake(post, i)

    def withdraw(self, post: str, day: int) -> None:
        if post not in self.digest or post in self.withdrawn:
            return
        self.withdrawn.add(post)
        i = self.fact(self._env(PostWithdrawn(unit=U, reason="撤回"), post, MAKER, day))
        self.n += 1
        self._overtake(post, i)

    def sign(self, post: str, day: int, *, stale_view: bool = False, agree: bool = True) -> None:
        """The leader signs; review records the conclusion in the same batch.

        ``stale_view``: review decided on the content before the latest revision (it had not
        read it yet), so the signature binds the previous digest.
        """
        if post not in self.digest or post in self.withdrawn:
            return
        digest, version = self.digest[post], self.version[post]
        if stale_view:
            if version == 1:
                return
            digest, version = f"{self.n - 1:064x}", version - 1  # a digest nobody revised to
        self.chain[post] = self.chain.get(post, 0) + 1
        chain = self.chain[post]
        leader = Actor(person=LEADERS[0], role="leader", unit=U)
        signed = self._env(ReviewSigned(
            post_id=post, chain=chain, stage="leader", decision="agree" if agree else "disagree",
            opinion=None if agree else "不同意", signer=leader, content_digest=digest,
            content_version=version), post, leader, day)
        done = self._env(ReviewConcluded(
            post_id=post, chain=chain, outcome="approved" if agree else "rejected",
            content_digest=digest, content_version=version), post, leader, day, index=1,
            causation=signed.event_id)
        i = self.fact(signed)
        pending = self.void_pending.pop(post, None)
        if pending is not None:
            self.events[i].before = pending
        self.fact(done)
        self.n += 1
        if agree and not stale_view:
            self.voidable[post] = (chain, digest, version)

    def publish(self, pub: str, post: str | None, day: int, which: str, late: int) -> None:
        """The CMS reports an item online: the current, the first, or an unknown digest."""
        if pub in self.published:
            return
        self.published.append(pub)
        if post is not None and post in self.digest:
            digest = self.digest[post] if which == "current" else f"{0:064x}"
            if which == "first":
                digest = next(e.env.payload.content_digest for e in self.events
                              if e.env.type == "PostSubmitted" and e.env.aggregate_id == post)
        else:
            post, digest = None, "e" * 64
        i = self.fact(self._env(PostPublished(
            publication_id=pub, post_id=post, unit=U, column=COLUMN,
            url=f"https://example.gov.cn/{pub}", online_at=at(day, self.n),
            content_digest=digest), pub, CMS, day))
        self.n += 1
        # freshness: the publication refreshes the stale triggered episode, perhaps late.
        for episode, stale_id in list(self.stale.items()):
            del self.stale[episode]
            env = new_event(
                ColumnRefreshed(
                    unit=U, column=COLUMN, rule_set="wenan", rule="r", rule_kind="triggered",
                    episode=episode, due_date=START, resolution="published",
                    stale_event_id=stale_id, post_id=post, met_on=START + timedelta(days=day),
                    late_days=late, last_publication_at=at(day, self.n - 1),
                ),
                aggregate_id=f"{U}--{COLUMN}", actor=FRESHNESS, command_id=f"refreshed:{episode}",
                recorded_at=at(day, self.n), causation_id=self.events[i].env.event_id,
            )
            self.reaction(env, i)

    def go_stale(self, day: int) -> None:
        episode = f"e{self.n}"
        env = self._env(ColumnStale(
            unit=U, column=COLUMN, rule_set="wenan", rule="r", rule_kind="triggered",
            due_date=START, overdue_days=1, episode=episode), f"{U}--{COLUMN}", FRESHNESS, day)
        self.stale[episode] = env.event_id
        self.fact(env)
        self.n += 1

    def leader_change(self, day: int, grant: bool) -> None:
        payload: EventPayload = (RoleGranted if grant else RoleRevoked)(
            person_id=LEADERS[1], unit=U, role="leader")
        self.fact(self._env(payload, LEADERS[1], SETUP, day))
        self.n += 1


# ---- orders --------------------------------------------------------------------------------


def constraints(story: Story) -> dict[int, set[int]]:
    """For each event, the events that must land before it."""
    after: dict[int, set[int]] = {i: set() for i in range(len(story.events))}
    facts = [i for i, e in enumerate(story.events) if e.cause is None]
    for a, b in pairwise(facts):
        after[b].add(a)
    # A service writes one aggregate in the order it decided (the story's list order): a
    # reaction of freshness to a publication precedes freshness's later ColumnStale on the
    # same column, because freshness reads the log in order before it ticks.
    last_of: dict[str, int] = {}
    for i, e in enumerate(story.events):
        key = f"{e.env.actor.person}/{e.env.aggregate_id}"
        if key in last_of:
            after[i].add(last_of[key])
        last_of[key] = i
        if e.cause is not None:
            after[i].add(e.cause)
        if e.before is not None:
            after[i].add(e.before)
    return after


def orders(story: Story) -> list[list[int]]:
    """Every order the causal links allow (small stories only)."""
    after = constraints(story)
    out: list[list[int]] = []

    def extend(prefix: list[int], placed: set[int]) -> None:
        if len(prefix) == len(after):
            out.append(list(prefix))
            return
        for i in sorted(after):
            if i not in placed and after[i] <= placed:
                prefix.append(i)
                placed.add(i)
                extend(prefix, placed)
                placed.discard(i)
                prefix.pop()

    extend([], set())
    return out


def random_order(story: Story, picks: list[int]) -> list[int]:
    """One allowed order, chosen by ``picks`` (hypothesis' draws) among the ready events."""
    after = constraints(story)
    placed: set[int] = set()
    order: list[int] = []
    k = 0
    while len(order) < len(after):
        ready = [i for i in sorted(after) if i not in placed and after[i] <= placed]
        choice = ready[picks[k % len(picks)] % len(ready)] if picks else ready[0]
        k += 1
        order.append(choice)
        placed.add(choice)
    return order


# ---- the verdict ---------------------------------------------------------------------------


def settle(log: Log, today: date) -> None:
    """Decide on ``today`` and record, until nothing new is decided (the service's settle)."""
    now = datetime.combine(today, time(23), SHANGHAI).astimezone(UTC)
    for _ in range(20):
        if not sum(log.append(d.event, d.expected)
                   for d in decide(log.rows, today, now, CAL, POLICY)):
            return
    raise AssertionError("accountability did not settle")


def verdict(
    story: Story, order: list[int], settle_after: frozenset[int] = frozenset()
) -> list[Any]:
    """The violations, as canonical data, when the story lands in ``order``.

    accountability ticks every day (as its service does), and also decides after the positions
    in ``settle_after`` (after a batch); ticks run on to ``END``, long after the story.
    """
    log = Log()
    today = START
    for pos, i in enumerate(order):
        env = story.events[i].env
        day = env.recorded_at.astimezone(SHANGHAI).date()
        while today < day:
            settle(log, today)
            today += timedelta(days=1)
        log.append(env)
        if pos in settle_after:
            settle(log, today)
    while today <= END:
        settle(log, today)
        today += timedelta(days=1)
    out = []
    for e in log.events:
        if e.type != "ViolationRecorded":
            continue
        p = e.payload.model_dump(mode="json")
        p["responsible"] = sorted(p["responsible"], key=lambda r: (r["person"], r["role"]))
        p["evidence"] = sorted(p["evidence"])
        out.append({"violation_id": e.aggregate_id, "event_id": e.event_id, **p})
    return sorted(out, key=lambda v: v["violation_id"])


def digest(violations: list[Any]) -> str:
    raw = json.dumps(violations, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


# ---- the story of issue 13, every order --------------------------------------------------------


def revise_then_publish_old(withdraw: bool = False) -> Story:
    s = Story()
    s.directory()
    s.go_stale(0)
    s.submit("P1", 0)
    s.sign("P1", 0)
    if withdraw:
        s.withdraw("P1", 0)
    else:
        s.revise("P1", 0)
    s.publish("pub-1", "P1", 0, "first", late=2)
    return s


def test_publishing_the_old_approved_digest_after_a_revision_is_unreviewed_in_every_order() -> None:
    story = revise_then_publish_old()
    all_orders = orders(story)
    # the void before or after the publication, the refresh before or after the void
    assert len(all_orders) == 3
    verdicts = [verdict(story, o) for o in all_orders]
    assert all(v == verdicts[0] for v in verdicts)
    kinds = sorted(v["kind"] for v in verdicts[0])
    assert kinds == ["late_publication", "published_without_review"]
    unreviewed = next(v for v in verdicts[0] if v["kind"] == "published_without_review")
    assert {r["person"] for r in unreviewed["responsible"]} == {"u1-maker", "u1-leader"}
    assert len({digest(v) for v in verdicts}) == 1


def test_publishing_a_withdrawn_posts_approved_digest_is_unreviewed_in_every_order() -> None:
    story = revise_then_publish_old(withdraw=True)
    verdicts = [verdict(story, o) for o in orders(story)]
    assert len(verdicts) == 3 and all(v == verdicts[0] for v in verdicts)
    assert "published_without_review" in {v["kind"] for v in verdicts[0]}


def test_an_approval_decided_before_review_read_the_revision_approves_nothing() -> None:
    s = Story()
    s.directory()
    s.submit("P1", 0)
    s.revise("P1", 0)
    s.sign("P1", 0, stale_view=True)  # binds version 1, recorded after version 2
    s.publish("pub-1", "P1", 0, "first", late=0)
    assert [v["kind"] for v in verdict(s, orders(s)[0])] == ["published_without_review"]


def test_the_current_approved_digest_published_is_no_violation_in_any_order() -> None:
    s = Story()
    s.directory()
    s.submit("P1", 0)
    s.sign("P1", 0)
    s.revise("P1", 0)
    s.sign("P1", 0)  # chain 2 approves the revision; review settled chain 1's void first
    s.publish("pub-1", "P1", 0, "current", late=0)
    all_orders = orders(s)
    assert len(all_orders) == 1  # the void must precede the second signature
    assert verdict(s, all_orders[0]) == []


def test_late_publication_names_who_answered_when_the_item_went_online() -> None:
    """A role change between the publication and freshness's refresh changes nobody's blame."""
    s = Story()
    s.directory()
    s.go_stale(0)
    s.publish("pub-1", None, 1, "current", late=3)  # an item with no post in gongkai
    s.leader_change(2, grant=True)
    verdicts = [verdict(s, o) for o in orders(s)]
    assert len(verdicts) == 2 and verdicts[0] == verdicts[1]
    late = next(v for v in verdicts[0] if v["kind"] == "late_publication")
    assert [r["person"] for r in late["responsible"]] == ["u1-leader"]


# ---- random stories ---------------------------------------------------------------------------

POSTS = ("P0", "P1")
ACTION = st.one_of(
    st.tuples(st.just("submit"), st.sampled_from(POSTS), st.booleans()),
    st.tuples(st.just("revise"), st.sampled_from(POSTS)),
    st.tuples(st.just("withdraw"), st.sampled_from(POSTS)),
    st.tuples(st.just("sign"), st.sampled_from(POSTS), st.booleans(), st.booleans()),
    st.tuples(st.just("publish"), st.sampled_from((*POSTS, None)),
              st.sampled_from(("current", "first", "other")), st.integers(0, 3)),
    st.tuples(st.just("stale")),
    st.tuples(st.just("leader"), st.booleans()),
)
STORIES = st.lists(st.tuples(st.integers(0, 9), ACTION), min_size=4, max_size=24).map(
    lambda acts: sorted(acts, key=lambda a: a[0])
)


def build(actions: list[tuple[int, tuple[Any, ...]]]) -> Story:
    s = Story()
    s.directory()
    for day, act in actions:
        kind = act[0]
        if kind == "submit":
            s.submit(act[1], day, act[2])
        elif kind == "revise":
            s.revise(act[1], day)
        elif kind == "withdraw":
            s.withdraw(act[1], day)
        elif kind == "sign":
            s.sign(act[1], day, stale_view=act[2], agree=act[3])
        elif kind == "publish":
            s.publish(f"pub-{len(s.published)}", act[1], day, act[2], act[3])
        elif kind == "stale":
            s.go_stale(day)
        else:
            s.leader_change(day, act[1])
    return s


@settings(max_examples=300, deadline=None)
@given(
    actions=STORIES,
    picks=st.lists(st.integers(0, 50), min_size=1, max_size=60),
    settles=st.sets(st.integers(0, 60), max_size=10),
)
def test_every_allowed_order_of_reactions_gives_the_same_violations(
    actions: list[tuple[int, tuple[Any, ...]]], picks: list[int], settles: set[int]
) -> None:
    story = build(actions)
    reactions_first = random_order(story, [])  # each reaction as early as it can be
    chosen = random_order(story, picks)
    want = verdict(story, reactions_first)
    got = verdict(story, chosen, frozenset(settles))
    assert got == want
    assert digest(got) == digest(want)
