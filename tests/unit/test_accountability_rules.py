"""Section 5 of the notice, rule by rule: given the facts, when the rule runs, then the verdict.

Each rule of ``gongkai_accountability.domain.violations`` (and who answers, the one function
``responsibility.responsible``; how a supervision case ends) as a table of cases, without a
read model or a log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import pytest

from gongkai.calendar import day_end
from gongkai.events.contracts.freshness import ColumnRefreshed
from gongkai.events.contracts.intake import PostPublished
from gongkai_accountability.domain.responsibility import Person, responsible
from gongkai_accountability.domain.supervision import supervision_outcome
from gongkai_accountability.domain.violations import (
    CaseFacts,
    FindingFacts,
    PostFacts,
    Verdict,
    late_publication,
    published_without_review,
    stale_after_supervision,
    wrong_information,
)

U = "finance"
A, B = "a" * 64, "b" * 64
T0 = datetime(2026, 3, 2, 1, tzinfo=UTC)
LATER = datetime(2026, 3, 20, 1, tzinfo=UTC)
CMS = Person("cms", "office", "county-office")
UNIT_MAKER = Person("m", "maker", U)


def directory(
    now: dict[str, list[str]], then: dict[str, list[str]] | None = None
) -> Any:
    """Who holds each role now, and (when asked with a time) who held it then."""

    def held(role: str, when: datetime | None) -> Sequence[str]:
        if when is not None and then is not None and then.get(role):
            return then[role]
        return now.get(role, [])

    return held


DIRECTORY = directory({"leader": ["boss"], "maker": ["m", "m2"]})


def post(
    *, approved: tuple[str, ...] = (), flagged: tuple[str, ...] = (),
    signers: tuple[str, ...] = (), answered: tuple[Person, ...] | None = None,
) -> PostFacts:
    return PostFacts("P1", "ev-submitted", "m", approved, flagged, signers, answered)


def who(people: Sequence[Any]) -> list[tuple[str, str]]:
    return [(p.person, p.role) for p in people]


# ---- 谁制作、谁审核、谁公开、谁负责 -------------------------------------------------------


@dataclass
class Answers:
    name: str
    given: dict[str, Any]
    then: list[tuple[str, str]]
    held: Any = DIRECTORY


ANSWERS = [
    Answers("maker-and-signer", {"made_by": "m", "approved_by": ["l2", "l1"]},
            [("m", "maker"), ("l1", "leader"), ("l2", "leader")]),
    Answers("nobody-signed-the-units-leader", {"made_by": "m"},
            [("m", "maker"), ("boss", "leader")]),
    Answers("no-post-the-units-leader", {}, [("boss", "leader")]),
    Answers("leader-then-not-now", {"when": T0}, [("old-boss", "leader")],
            directory({"leader": ["boss"]}, {"leader": ["old-boss"]})),
    Answers("nobody-then-falls-back-to-now", {"when": T0}, [("boss", "leader")]),
    Answers("publisher-of-the-unit", {"made_by": "m", "approved_by": ["l1"],
                                      "published_by": Person("p", "maker", U)},
            [("m", "maker"), ("l1", "leader"), ("p", "maker")]),
    Answers("cms-publisher-is-not-named", {"made_by": "m", "approved_by": ["l1"],
                                           "published_by": CMS},
            [("m", "maker"), ("l1", "leader")]),
    Answers("maker-who-published-named-once", {"made_by": "m", "approved_by": ["l1"],
                                               "published_by": UNIT_MAKER},
            [("m", "maker"), ("l1", "leader")]),
    Answers("stale-column-leaders-and-makers", {"when": T0, "kept": True},
            [("boss", "leader"), ("m", "maker"), ("m2", "maker")]),
]


@pytest.mark.parametrize("case", ANSWERS, ids=lambda c: c.name)
def test_responsible(case: Answers) -> None:
    people = responsible(U, case.held, **case.given)
    assert who(people) == case.then
    assert {p.unit for p in people} == {U}


# ---- published without review ---------------------------------------------------------------


def published(digest: str = A, at: datetime = LATER) -> PostPublished:
    return PostPublished(publication_id="pub1", post_id="P1", unit=U, column="c", url="u",
                         online_at=at, content_digest=digest)


@dataclass
class Unreviewed:
    name: str
    post: PostFacts | None
    then: tuple[str, list[tuple[str, str]], list[str]] | None  # severity, who, evidence
    digest: str = A
    joined: datetime | None = T0
    by: Person = CMS
    summary: str = ""


UNREVIEWED = [
    Unreviewed("approved-digest-online", post(approved=(A,), signers=("l1",)), None),
    Unreviewed("never-approved", post(), ("minor", [("m", "maker"), ("boss", "leader")],
                                          ["ev-submitted", "ev-pub"]),
               summary="without the principal leader's approval"),
    Unreviewed("never-approved-and-flagged", post(flagged=(B,)),
               ("serious", [("m", "maker"), ("boss", "leader")], ["ev-submitted", "ev-pub"])),
    Unreviewed("another-version-than-approved", post(approved=(A,), signers=("l1",)),
               ("minor", [("m", "maker"), ("l1", "leader")], ["ev-submitted", "ev-pub"]),
               digest=B, summary="differs from the approved one"),
    Unreviewed("the-flagged-version-went-online", post(approved=(A,), flagged=(B,),
                                                       signers=("l1",)),
               ("serious", [("m", "maker"), ("l1", "leader")], ["ev-submitted", "ev-pub"]),
               digest=B),
    Unreviewed("unknown-to-gongkai", None, ("minor", [("boss", "leader")], ["ev-pub"]),
               summary="with no post in gongkai"),
    Unreviewed("unknown-published-by-the-unit", None,
               ("minor", [("boss", "leader"), ("m", "maker")], ["ev-pub"]), by=UNIT_MAKER),
    Unreviewed("online-before-the-unit-joined", None, None,
               joined=datetime(2027, 1, 1, tzinfo=UTC)),
    Unreviewed("unit-not-registered", None, None, joined=None),
]


@pytest.mark.parametrize("case", UNREVIEWED, ids=lambda c: c.name)
def test_published_without_review(case: Unreviewed) -> None:
    verdict = published_without_review(
        published(case.digest), "ev-pub", case.by, case.post, case.joined, DIRECTORY
    )
    if case.then is None:
        assert verdict is None
        return
    assert verdict is not None
    v = verdict.violation
    severity, people, evidence = case.then
    assert (v.kind, v.severity, v.publication_id, v.occurred_at) == (
        "published_without_review", severity, "pub1", LATER
    )
    assert who(v.responsible) == people
    assert list(v.evidence) == evidence
    assert case.summary in v.summary
    # One violation per publication, however often it is decided.
    assert verdict.command_id == "violation:published_without_review:pub1"


# ---- late publication -----------------------------------------------------------------------


def refreshed(**kw: Any) -> ColumnRefreshed:
    fields: dict[str, Any] = {
        "unit": U, "column": "penalties", "rule_set": "wenan-2018", "rule": "r",
        "rule_kind": "triggered", "episode": "e1", "due_date": date(2026, 3, 2),
        "resolution": "published", "stale_event_id": "ev-stale", "late_days": 3,
        "met_on": date(2026, 3, 5), "post_id": None,
    }
    return ColumnRefreshed(**{**fields, **kw})


@dataclass
class Late:
    name: str
    given: dict[str, Any]
    post: PostFacts | None
    then: tuple[str, list[tuple[str, str]], list[str]] | None  # key, who, evidence
    held: Any = DIRECTORY


LATE = [
    Late("on-time", {"late_days": 0}, None, None),
    Late("periodic-is-supervisions-matter", {"rule_kind": "periodic"}, None, None),
    Late("hidden-not-published", {"resolution": "hidden"}, None, None),
    Late("late-item-of-no-post", {}, None,
         ("finance:penalties:triggered-2026-03-02", [("boss", "leader")],
          ["ev-stale", "ev-refreshed"])),
    Late("leaders-when-it-went-online", {}, None,
         ("finance:penalties:triggered-2026-03-02", [("old-boss", "leader")],
          ["ev-stale", "ev-refreshed"]),
         directory({"leader": ["boss"]}, {"leader": ["old-boss"]})),
    Late("a-posts-people-fixed-at-publication", {"post_id": "P1"},
         post(signers=("l1",), answered=(Person("m", "maker", U), Person("l0", "leader", U))),
         ("finance:penalties:P1", [("m", "maker"), ("l0", "leader")],
          ["ev-submitted", "ev-stale", "ev-refreshed"])),
    Late("a-post-not-yet-answered-for", {"post_id": "P1"}, post(signers=("l1",)),
         ("finance:penalties:P1", [("m", "maker"), ("l1", "leader")],
          ["ev-submitted", "ev-stale", "ev-refreshed"])),
    Late("no-stale-event-named", {"stale_event_id": ""}, None,
         ("finance:penalties:triggered-2026-03-02", [("boss", "leader")], ["ev-refreshed"])),
]


@pytest.mark.parametrize("case", LATE, ids=lambda c: c.name)
def test_late_publication(case: Late) -> None:
    verdict = late_publication(refreshed(**case.given), "ev-refreshed", LATER, case.post, case.held)
    if case.then is None:
        assert verdict is None
        return
    assert verdict is not None
    key, people, evidence = case.then
    v = verdict.violation
    assert (verdict.key, v.kind, v.severity, v.occurred_at) == (
        key, "late_publication", "minor", LATER
    )
    assert who(v.responsible) == people
    assert list(v.evidence) == evidence
    assert "3 day(s) after its due date 2026-03-02" in v.summary


def test_regression_a_late_refresh_naming_no_event_is_a_verdict_not_a_crash() -> None:
    """Found by test_projection_batches (hypothesis, make test): a ColumnRefreshed with no
    stale event whose own event id was empty left the verdict no evidence, and
    ViolationRecorded (evidence: at least one) raised inside the fold, stopping a rebuild.
    The refresh is always cited, as every other verdict cites its fact."""
    verdict = late_publication(refreshed(stale_event_id=""), "", LATER, None, DIRECTORY)
    assert verdict is not None and list(verdict.violation.evidence) == [""]


# ---- stale after supervision ----------------------------------------------------------------


def case_facts(**kw: Any) -> CaseFacts:
    fields: dict[str, Any] = {
        "case_id": "finance--c--1", "unit": U, "column": "c", "stale_event_ids": ("s1", "s2"),
        "notice_event_id": "ev-notice", "issued_on": date(2026, 3, 4),
        "deadline": date(2026, 3, 11),
    }
    return CaseFacts(**{**fields, **kw})


@dataclass
class Breach:
    name: str
    case: CaseFacts
    today: date
    breached: bool


BREACHES = [
    Breach("before-the-deadline", case_facts(), date(2026, 3, 10), False),
    Breach("the-deadline-day-still-counts", case_facts(), date(2026, 3, 11), False),
    Breach("the-day-after", case_facts(), date(2026, 3, 12), True),
    Breach("no-notice-yet", case_facts(notice_event_id=None, issued_on=None, deadline=None),
           date(2026, 4, 1), False),
    Breach("breached-once", case_facts(breach="V-1"), date(2026, 3, 12), False),
    Breach("refreshed-or-closed", case_facts(over=True), date(2026, 3, 12), False),
]


@pytest.mark.parametrize("case", BREACHES, ids=lambda c: c.name)
def test_stale_after_supervision(case: Breach) -> None:
    verdict = stale_after_supervision(case.case, case.today, DIRECTORY)
    if not case.breached:
        assert verdict is None
        return
    assert isinstance(verdict, Verdict)
    v = verdict.violation
    assert (verdict.command_id, v.severity, v.case_id, v.occurred_at) == (
        "violation:stale_after_supervision:finance--c--1", "serious", "finance--c--1",
        day_end(date(2026, 3, 11)),
    )
    assert who(v.responsible) == [("boss", "leader"), ("m", "maker"), ("m2", "maker")]
    assert list(v.evidence) == ["s1", "s2", "ev-notice"]
    assert "deadline 2026-03-11 (notice of 2026-03-04)" in v.summary


# ---- wrong information ----------------------------------------------------------------------


@dataclass
class Wrong:
    name: str
    kind: str
    post: PostFacts | None
    publisher: Person | None
    then: tuple[str, list[tuple[str, str]], str | None]  # severity, who, post id
    finding_post: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


WRONG = [
    Wrong("typo-in-an-approved-post", "typo", post(signers=("l1",)), CMS,
          ("minor", [("m", "maker"), ("l1", "leader")], "P1")),
    Wrong("false-content-is-serious", "false", post(signers=("l1",)), CMS,
          ("serious", [("m", "maker"), ("l1", "leader")], "P1")),
    Wrong("privacy-leak-is-serious", "privacy_leak", post(), None,
          ("serious", [("m", "maker"), ("boss", "leader")], "P1")),
    Wrong("an-item-gongkai-never-saw", "wrong_statistics", None, Person("p", "staff", U),
          ("minor", [("boss", "leader"), ("p", "staff")], None)),
    Wrong("the-findings-own-post-id-kept", "typo", None, None,
          ("minor", [("boss", "leader")], "P9"), finding_post="P9"),
]


@pytest.mark.parametrize("case", WRONG, ids=lambda c: c.name)
def test_wrong_information(case: Wrong) -> None:
    finding = FindingFacts("F-1", U, case.kind, "GDP 数字错误", "ev-reported",
                           post_id=case.finding_post, publication_id="pub1", column="c")
    verdict = wrong_information(finding, "ev-confirmed", LATER, case.post, case.publisher,
                                DIRECTORY)
    severity, people, post_id = case.then
    v = verdict.violation
    assert (verdict.command_id, v.severity, v.post_id, v.finding_id, v.publication_id) == (
        "violation:wrong_information:F-1", severity, post_id, "F-1", "pub1"
    )
    assert who(v.responsible) == people
    assert list(v.evidence) == ["ev-reported", "ev-confirmed"]


# ---- how a supervision case ends ------------------------------------------------------------


@pytest.mark.parametrize(
    ("deadline", "closed_on", "outcome"),
    [
        (None, date(2026, 3, 3), "before_notice"),
        (date(2026, 3, 11), date(2026, 3, 10), "within_deadline"),
        (date(2026, 3, 11), date(2026, 3, 11), "within_deadline"),
        (date(2026, 3, 11), date(2026, 3, 12), "after_deadline"),
    ],
    ids=["refreshed-before-any-notice", "before-the-deadline", "on-the-deadline-day",
         "after-the-deadline"],
)
def test_supervision_outcome(deadline: date | None, closed_on: date, outcome: str) -> None:
    assert supervision_outcome(deadline, closed_on) == outcome
