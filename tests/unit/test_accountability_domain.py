"""accountability's fold and decisions, without NATS: facts in, violations and cases out."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

import pytest

from gongkai.calendar import SHANGHAI, WorkingCalendar
from gongkai.decider import Decided
from gongkai.events import Actor, EventPayload, new_event
from gongkai.events.contracts.freshness import ColumnRefreshed, ColumnStale
from gongkai.events.contracts.intake import (
    MaskedSpan,
    PostPublished,
    PostRevised,
    RoleGranted,
    Screening,
    UnitRegistered,
)
from gongkai.events.contracts.review import ReviewConcluded, ReviewSigned
from gongkai_accountability.domain.decide import Policy, decide
from gongkai_accountability.domain.fold import evolve, holders_at
from gongkai_accountability.domain.report import as_of_view, unit_reports
from gongkai_accountability.domain.rows import MemoryRows
from gongkai_accountability.domain.tables import POST, UNIT, Unit
from tests.builders import post_submitted

D = date.fromisoformat
A = "a" * 64
B = "b" * 64
CAL = WorkingCalendar.default()
MAKER = Actor(person="finance-maker", role="maker", unit="finance")
LEADER = Actor(person="finance-leader", role="leader", unit="finance")
CMS = Actor(person="cms", role="office", unit="county-office")
SYSTEM = Actor(person="freshness", role="system", unit="system")


def at(d: date) -> datetime:
    return datetime.combine(d, time(9), SHANGHAI).astimezone(UTC)


class Tape:
    """Records facts into a MemoryRows fold and plays accountability's decisions back."""

    def __init__(self) -> None:
        self.rows = MemoryRows()
        self.seq = 0
        self.recorded: list[Any] = []
        self.today = D("2026-03-02")

    def fact(self, payload: EventPayload, agg: str, actor: Actor = SYSTEM) -> str:
        self.seq += 1
        env = new_event(
            payload,
            aggregate_id=agg,
            actor=actor,
            command_id=f"t{self.seq}",
            recorded_at=at(self.today),
        )
        evolve(self.rows, env, self.seq)
        return env.event_id

    def decide(self) -> list[Decided]:
        return decide(self.rows, self.today, at(self.today), CAL, Policy(2, 5))

    def settle(self) -> list[Any]:
        """Decide and record until nothing is left, as the service does; returns new events."""
        new: list[Any] = []
        seen = {e.aggregate_id + e.type for e in self.recorded}
        for _ in range(10):
            ds = [d for d in self.decide() if d.event.aggregate_id + d.event.type not in seen]
            if not ds:
                return new
            for d in ds:
                self.seq += 1
                evolve(self.rows, d.event, self.seq)
                seen.add(d.event.aggregate_id + d.event.type)
                new.append(d.event)
        self.recorded += new
        return new

    def directory(self) -> None:
        self.fact(
            UnitRegistered(
                code="finance",
                name="财政局",
                kind="department",
                contact_name="x",
                contact_mobile="1",
            ),
            "finance",
        )
        self.fact(RoleGranted(person_id="finance-maker", unit="finance", role="maker"), "fm")
        self.fact(RoleGranted(person_id="finance-leader", unit="finance", role="leader"), "fl")

    def submit(self, post: str, *, flagged: bool = False, kind: Any = None) -> None:
        self.fact(
            post_submitted(
                important_kind=kind,
                information_date=self.today,
                content_digest=A,
                screening=Screening(needs_secrecy_review=flagged),
            ),
            post,
            MAKER,
        )

    def approve(self, post: str, digest: str = A) -> None:
        self.fact(
            ReviewSigned(
                post_id=post,
                chain=1,
                stage="leader",
                decision="agree",
                signer=LEADER,
                content_digest=digest,
            ),
            post,
            LEADER,
        )
        self.fact(
            ReviewConcluded(post_id=post, chain=1, outcome="approved", content_digest=digest),
            post,
            SYSTEM,
        )

    def publish(
        self, pub: str, post: str | None, digest: str = A, column: str = "normative_documents"
    ) -> str:
        return self.fact(
            PostPublished(
                publication_id=pub,
                post_id=post,
                unit="finance",
                column=column,
                url="https://x/" + pub,
                online_at=at(self.today),
                content_digest=digest,
            ),
            pub,
            CMS,
        )


def test_publication_of_the_approved_digest_records_nothing() -> None:
    t = Tape()
    t.directory()
    t.submit("P1")
    t.approve("P1")
    t.publish("pub1", "P1")
    assert t.settle() == []
    post = t.rows.get(POST, "P1")
    assert post is not None
    assert [s.what for s in post.trail] == [
        "submitted",
        "signed:leader",
        "review:approved",
        "published",
    ]
    assert post.trail[1].person == "finance-leader"


def test_posts_share_their_equal_maker_form_and_people_answering() -> None:
    # The cyclic collector visits every object the read model keeps: equal immutable parts
    # of posts are one object, not one a post.
    t = Tape()
    t.directory()
    for n in (1, 2):
        t.submit(f"P{n}")
        t.approve(f"P{n}")
        t.publish(f"pub{n}", f"P{n}")
    one, two = t.rows.get(POST, "P1"), t.rows.get(POST, "P2")
    assert one is not None and two is not None and one.post_id != two.post_id
    assert one.maker is two.maker and one.maker.person == "finance-maker"
    assert one.form is two.form and one.form.information_date == "2026-03-02"
    answering = [(p.person, p.role) for p in one.published_responsible or ()]
    assert answering == [("finance-maker", "maker"), ("finance-leader", "leader")]
    assert one.published_responsible is two.published_responsible


def test_unreviewed_publication_is_one_violation_against_maker_and_leader() -> None:
    t = Tape()
    t.directory()
    t.submit("P1", flagged=True, kind="normative_document")
    pub_event = t.publish("pub1", "P1")
    new = t.settle()
    assert [e.type for e in new] == ["ViolationRecorded"]
    v = new[0].payload
    assert (v.kind, v.severity, v.post_id) == ("published_without_review", "serious", "P1")
    assert {(r.person, r.role) for r in v.responsible} == {
        ("finance-maker", "maker"),
        ("finance-leader", "leader"),
    }
    assert pub_event in v.evidence
    # Deciding again (a restart, a replay) yields the same event ids, expected new: once only.
    again = Tape()
    again.directory()
    again.submit("P1", flagged=True, kind="normative_document")
    again.publish("pub1", "P1")
    assert again.decide()[0].event.event_id == new[0].event_id
    assert again.decide()[0].expected == 0
    assert t.decide() == []


def test_a_digest_other_than_the_approved_one_is_unreviewed() -> None:
    t = Tape()
    t.directory()
    t.submit("P1")
    t.approve("P1")
    t.publish("pub1", "P1", digest=B)
    [v] = t.settle()
    assert "differs from the approved" in v.payload.summary
    assert v.payload.severity == "minor"


def test_publication_unknown_to_gongkai_names_the_units_leader() -> None:
    t = Tape()
    t.directory()
    t.publish("pub9", None)
    [v] = t.settle()
    assert [(r.person, r.role) for r in v.payload.responsible] == [("finance-leader", "leader")]


def stale(
    t: Tape,
    rule_set: str = "wenan-2018",
    kind: str = "periodic",
    column: str = "leaders_activities",
    post: str | None = None,
) -> str:
    return t.fact(
        ColumnStale(
            unit="finance",
            column=column,
            rule_set=rule_set,
            rule="r",
            rule_kind=kind,
            due_date=t.today,
            overdue_days=1,
            episode="e1",
            post_id=post,
        ),
        f"finance--{column}",
    )


def refreshed(
    t: Tape,
    stale_id: str,
    rule_set: str = "wenan-2018",
    kind: Any = "periodic",
    column: str = "leaders_activities",
    late: int | None = None,
    post: str | None = None,
) -> str:
    return t.fact(
        ColumnRefreshed(
            unit="finance",
            column=column,
            rule_set=rule_set,
            rule="r",
            rule_kind=kind,
            episode="e1",
            due_date=D("2026-03-02"),
            resolution="published",
            stale_event_id=stale_id,
            late_days=late,
            met_on=t.today,
            post_id=post,
        ),
        f"finance--{column}",
    )


def test_supervision_issued_after_delay_breached_after_deadline_then_closed() -> None:
    t = Tape()
    t.directory()
    s1 = stale(t)
    s2 = stale(t, rule_set="national-2019")  # one column, one case
    assert t.settle() == []  # the notice waits two working days
    t.today = D("2026-03-04")
    [notice] = t.settle()
    assert notice.type == "SupervisionIssued"
    assert notice.payload.stale_event_ids == (s1, s2)
    assert notice.payload.deadline == D("2026-03-11")  # 5 working days after Wed 03-04
    t.today = D("2026-03-11")
    assert t.settle() == []  # the deadline day itself is still in time
    t.today = D("2026-03-12")
    [breach] = t.settle()
    assert breach.payload.kind == "stale_after_supervision"
    assert breach.payload.case_id == notice.payload.case_id
    assert notice.event_id in breach.payload.evidence
    assert {r.role for r in breach.payload.responsible} == {"leader", "maker"}
    t.today = D("2026-03-13")
    assert t.settle() == []  # a case is breached once
    refreshed(t, s1)
    assert t.settle() == []  # still stale under the other rule set
    refreshed(t, s2, rule_set="national-2019")
    closed = t.settle()
    assert sorted(e.type for e in closed) == ["SupervisionClosed", "ViolationRectified"]
    assert next(e for e in closed if e.type == "SupervisionClosed").payload.outcome == (
        "after_deadline"
    )
    view = as_of_view(t.rows, D("2026-03-13"))
    assert view["open_cases"] == [] and view["stale_columns"] == []
    assert view["violations"][0]["rectified"]["how"] == "refreshed"


def test_refreshed_before_the_notice_closes_without_violation() -> None:
    t = Tape()
    s = stale(t)
    refreshed(t, s)
    [closed] = t.settle()
    assert (closed.type, closed.payload.outcome) == ("SupervisionClosed", "before_notice")


def test_late_triggered_item_is_one_violation_across_rule_sets() -> None:
    t = Tape()
    t.directory()
    t.submit("P1")
    s1 = stale(t, kind="triggered", column="penalties", post="P1")
    s2 = stale(t, rule_set="national-2019", kind="triggered", column="penalties", post="P1")
    refreshed(t, s1, kind="triggered", column="penalties", late=3, post="P1")
    refreshed(
        t, s2, rule_set="national-2019", kind="triggered", column="penalties", late=1, post="P1"
    )
    new = t.settle()
    assert sorted(e.type for e in new) == ["SupervisionClosed", "ViolationRecorded"]
    v = next(e.payload for e in new if e.type == "ViolationRecorded")
    assert (v.kind, v.post_id) == ("late_publication", "P1")
    assert ("finance-maker", "maker") in {(r.person, r.role) for r in v.responsible}


def test_periodic_refresh_late_is_not_late_publication() -> None:
    t = Tape()
    s = stale(t)
    refreshed(t, s, late=4)
    assert [e.type for e in t.settle()] == ["SupervisionClosed"]


def test_finding_answered_by_revision_is_resolved() -> None:
    from gongkai.events.contracts.accountability import FindingReported

    t = Tape()
    t.directory()
    t.submit("P1")
    t.fact(
        FindingReported(
            finding_id="F-1",
            unit="finance",
            kind="typo",
            post_id="P1",
            description="错别字",
            reported_on=t.today,
        ),
        "F-1",
    )
    assert t.settle() == []
    t.fact(
        PostRevised(
            unit="finance",
            title="t",
            body="b2",
            information_date=t.today,
            content_version=2,
            content_digest=B,
        ),
        "P1",
        MAKER,
    )
    [resolved] = t.settle()
    assert (resolved.type, resolved.payload.how) == ("FindingResolved", "revised")
    assert t.rows.get("finding", "F-1").status == "resolved"  # type: ignore[union-attr]


def test_confirmed_finding_is_wrong_information_and_counts_in_the_report() -> None:
    from gongkai.events.contracts.accountability import FindingConfirmed, FindingReported

    t = Tape()
    t.directory()
    t.submit("P1")
    t.approve("P1")
    t.publish("pub1", "P1")
    t.fact(
        FindingReported(
            finding_id="F-1",
            unit="finance",
            kind="wrong_statistics",
            publication_id="pub1",
            description="GDP 数字错误",
            reported_on=t.today,
        ),
        "F-1",
    )
    t.fact(FindingConfirmed(finding_id="F-1", unit="finance"), "F-1")
    [v] = t.settle()
    assert (v.payload.kind, v.payload.finding_id, v.payload.post_id) == (
        "wrong_information",
        "F-1",
        "P1",
    )
    assert {(r.person, r.role) for r in v.payload.responsible} == {
        ("finance-maker", "maker"),
        ("finance-leader", "leader"),
    }
    [rep] = unit_reports(t.rows, D("2026-03-01"), D("2026-03-31"))
    assert (rep.unit, rep.violations["wrong_information"], rep.findings, rep.score) == (
        "finance",
        1,
        1,
        95,
    )


def _holders_then(history: tuple[Any, ...], role: str, when: datetime) -> list[str]:
    """holders_at as it was written before its sorted grants were kept: the reference."""
    people: set[str] = set()
    for at_, r, person, granted in sorted(history, key=lambda g: g[0]):
        if r != role or datetime.fromisoformat(at_) > when:
            continue
        if granted:
            people.add(person)
        else:
            people.discard(person)
    return sorted(people)


def test_holders_at_answers_as_the_history_it_is_asked_about() -> None:
    """The grants sorted once per history (by its identity) answer as sorting them every time:
    a unit replaced by a longer history, a grant recorded late but dated earlier, and a new
    history equal to an old one all read as they are."""
    rows = MemoryRows()
    t = [datetime(2026, 3, d, 1, tzinfo=UTC) for d in range(1, 8)]
    grants: list[Any] = []
    history: tuple[Any, ...] = ()
    steps = [
        (t[2], "leader", "l1", True),
        (t[4], "leader", "l2", True),
        (t[1], "leader", "l0", True),  # recorded late, dated earlier
        (t[3], "leader", "l1", False),
        (t[5], "maker", "m1", True),
    ]
    for when_, role, who, granted in steps:
        grants.append((when_.isoformat(), role, who, granted))
        history = tuple(grants)
        rows.put(UNIT, "u", Unit(code="u", name="u", roles={}, names={}, history=history))
        for r in ("leader", "maker"):
            for when in t:
                for _ in range(2):  # the second time from what was kept
                    assert holders_at(rows, "u", r, when) == _holders_then(history, r, when)
    # An equal history in a new tuple (a unit read back from SQL) answers the same.
    again = tuple(list(history))
    rows.put(UNIT, "u", Unit(code="u", name="u", roles={}, names={}, history=again))
    assert holders_at(rows, "u", "leader", t[6]) == _holders_then(history, "leader", t[6])
    assert holders_at(rows, "nobody", "leader", t[6]) == []


def _as_before(**detail: Any) -> dict[str, Any]:
    """A step's detail as ``step(**detail)`` wrote it before the hot steps built their own."""
    return {k: v for k, v in detail.items() if v is not None}


@pytest.mark.parametrize("kind", [None, "normative_document"])
@pytest.mark.parametrize("spans", [0, 2])
@pytest.mark.parametrize("opinion", [None, "同意"])
@pytest.mark.parametrize("reason", [None, "驳回"])
def test_the_steps_every_post_takes_say_what_they_said(
    kind: Any, spans: int, opinion: str | None, reason: str | None
) -> None:
    """Submitted, signed, concluded (standing or overtaken) and published: each step's detail
    is what ``step``'s keywords without their None values were, keys in the same order."""
    t = Tape()
    t.directory()
    span = MaskedSpan(kind="mobile", field="body", start=0, end=11, masked="138****0000")
    screening = Screening(needs_secrecy_review=bool(spans), spans=(span,) * spans)
    t.fact(
        post_submitted(important_kind=kind, content_digest=A, body="13800000000 正文",
                       screening=screening),
        "P1",
        MAKER,
    )
    t.fact(
        ReviewSigned(post_id="P1", chain=1, stage="leader", decision="agree", opinion=opinion,
                     signer=LEADER, content_digest=A),
        "P1",
        LEADER,
    )
    t.fact(
        ReviewConcluded(post_id="P1", chain=1, outcome="approved", content_digest=A,
                        reason=reason),
        "P1",
        SYSTEM,
    )
    t.fact(  # overtaken: a digest no version had (stands False)
        ReviewSigned(post_id="P1", chain=2, stage="leader", decision="agree",
                     signer=LEADER, content_digest=B),
        "P1",
        LEADER,
    )
    t.fact(
        ReviewConcluded(post_id="P1", chain=2, outcome="approved", content_digest=B),
        "P1",
        SYSTEM,
    )
    t.publish("pub1", "P1")
    post = t.rows.get(POST, "P1")
    assert post is not None
    submitted, signed, concluded, _, overtaken, published = post.trail
    assert list(submitted.detail.items()) == list(_as_before(
        digest=A, version=1, title="t", important_kind=kind,
        needs_secrecy_review=bool(spans), personal_data=spans or None,
    ).items())
    assert list(signed.detail.items()) == list(_as_before(
        digest=A, decision="agree", opinion=opinion, chain=1, signer=LEADER.person,
        signer_role=LEADER.role, signer_unit=LEADER.unit,
    ).items())
    assert list(concluded.detail.items()) == list(_as_before(
        digest=A, chain=1, reason=reason, stands=None
    ).items())
    assert list(overtaken.detail.items()) == list(_as_before(
        digest=B, chain=2, reason=None, stands=False
    ).items())
    online_at = at(t.today).isoformat()
    assert list(published.detail.items()) == list(_as_before(
        digest=A, publication_id="pub1", url="https://x/pub1", online_at=online_at,
        reported_by="cms", redated=None,
    ).items())
