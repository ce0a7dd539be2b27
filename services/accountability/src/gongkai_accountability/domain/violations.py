"""Section 5 of the notice: when responsibility is pursued, one pure function per lapse.

* ``published_without_review``: information published without the review procedure (2.1);
* ``late_publication``: information not published on time (Attachment 2's deadlines);
* ``stale_after_supervision``: a column still not updated after supervision (督办);
* ``wrong_information``: information published incomplete, inaccurate or false, as the
  office's daily reading found and confirmed (读网纠错).

Each reads typed facts the read model gathered (``PostFacts``, ``CaseFacts``, ``FindingFacts``
and the event that may be the lapse) and returns the ``Verdict`` or None. Who is named is
``responsibility.responsible``'s answer. The read model (``fold``) and the deciding of
accountability's own events (``decide``) call these; neither words a violation itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from gongkai.calendar import day_end
from gongkai.events.contracts.accountability import Responsible, ViolationRecorded
from gongkai.events.contracts.freshness import ColumnRefreshed
from gongkai.events.contracts.intake import PostPublished
from gongkai_accountability.domain.codec import maker
from gongkai_accountability.domain.responsibility import Holders, Person, responsible
from gongkai_accountability.domain.tables import Case, Finding, Post

#: Rule kinds whose deadline runs from a trigger ("within N working days of ..."): missing one
#: is late publication; periodic and blank staleness is supervision's matter.
TRIGGERED_KINDS = ("triggered", "leadership")
#: Findings of false content or leaked personal data weigh as the notice's gravest case.
SERIOUS_FINDINGS = ("false", "privacy_leak")


@dataclass(frozen=True, slots=True)
class PostFacts:
    """What the rules read of a post."""

    post_id: str
    #: Its PostSubmitted: the first evidence of every verdict about it.
    submitted_event_id: str
    maker: str
    #: The digests standing approvals are for.
    approved: tuple[str, ...] = ()
    #: The digests screening flagged (secrets, personal data).
    flagged: tuple[str, ...] = ()
    leader_signers: tuple[str, ...] = ()
    #: Who answered for it when it first went online (None: not online yet).
    published_responsible: tuple[Person, ...] | None = None

    @classmethod
    def of(cls, row: Post) -> PostFacts:
        # Made through the slots, not __init__: the fold asks it on every publication.
        return _make_facts(
            post_id=row.post_id,
            submitted_event_id=row.trail[0].event_id,
            maker=row.maker.person,
            approved=tuple(row.approved.values()),
            flagged=row.flagged_digests,
            leader_signers=row.leader_signers,
            published_responsible=row.published_responsible,
        )


_make_facts = maker(PostFacts, by_name=True)


def answering_for(
    post: PostFacts | None,
    unit: str,
    held: Holders,
    *,
    when: datetime | None = None,
    published_by: Person | None = None,
) -> tuple[Person, ...]:
    """Who answers for an item of ``post`` (``responsible``): its maker and the leaders who
    signed it; with no post, the unit's principal leaders ``when`` it happened."""
    return responsible(
        unit,
        held,
        made_by=post.maker if post else None,
        approved_by=post.leader_signers if post else (),
        when=when,
        published_by=published_by,
    )


@dataclass(frozen=True, slots=True)
class CaseFacts:
    """A supervision case with its notice, as far as the rules read it."""

    case_id: str
    unit: str
    column: str
    stale_event_ids: tuple[str, ...]
    notice_event_id: str | None = None
    issued_on: date | None = None
    deadline: date | None = None
    #: The violation already recorded for it (a case is breached once).
    breach: str | None = None
    #: Closed, or every episode refreshed with the closing still to be recorded.
    over: bool = False

    @classmethod
    def of(cls, row: Case) -> CaseFacts:
        notice = row.notice
        return cls(
            case_id=row.case_id,
            unit=row.unit,
            column=row.column,
            stale_event_ids=row.stale_event_ids,
            notice_event_id=notice.event_id if notice else None,
            issued_on=date.fromisoformat(notice.issued_on) if notice else None,
            deadline=date.fromisoformat(notice.deadline) if notice else None,
            breach=row.breach,
            over=row.status == "closed" or bool(row.closing),
        )


@dataclass(frozen=True, slots=True)
class FindingFacts:
    """A finding the office reported (读网纠错)."""

    finding_id: str
    unit: str
    kind: str
    description: str
    reported_event_id: str
    post_id: str | None = None
    publication_id: str | None = None
    column: str | None = None

    @classmethod
    def of(cls, row: Finding) -> FindingFacts:
        return cls(
            finding_id=row.finding_id,
            unit=row.unit,
            kind=row.kind,
            description=row.description,
            reported_event_id=row.event_id,
            post_id=row.post_id,
            publication_id=row.publication_id,
            column=row.column,
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    """A violation to record, once: ``key`` says what it is about (one per kind and key)."""

    key: str
    violation: ViolationRecorded

    @property
    def command_id(self) -> str:
        return f"violation:{self.violation.kind}:{self.key}"


def _named(people: Sequence[Person]) -> tuple[Responsible, ...]:
    """The people who answer, as a ViolationRecorded names them."""
    return tuple(Responsible(person=p.person, role=p.role, unit=p.unit) for p in people)


def published_without_review(
    published: PostPublished,
    event_id: str,
    by: Person,
    post: PostFacts | None,
    joined: datetime | None,
    held: Holders,
) -> Verdict | None:
    """Online without a standing approval of the digest that went online (2.1).

    ``post``: the post it was published as (None: gongkai never saw it); ``joined``: when the
    unit was registered in gongkai (None: not registered): what went online before predates its
    review duties here. ``by``: who reported it online (answers if a person of the unit).
    """
    p = published
    if post is not None and p.content_digest in post.approved:
        return None
    if post is None and (joined is None or p.online_at < joined):
        return None
    if post is None:
        summary = f"item {p.publication_id} went online in {p.column} with no post in gongkai"
        serious = False
        evidence: tuple[str, ...] = (event_id,)
    else:
        approved = bool(post.approved)
        summary = (
            f"post {post.post_id} went online in a version that differs from the approved one"
            if approved
            else f"post {post.post_id} went online without the principal leader's approval"
        )
        serious = p.content_digest in post.flagged or (not approved and bool(post.flagged))
        evidence = (post.submitted_event_id, event_id)
    people = answering_for(post, p.unit, held, published_by=by)
    return Verdict(
        p.publication_id,
        ViolationRecorded(
            responsible=_named(people),
            kind="published_without_review",
            unit=p.unit,
            evidence=evidence,
            severity="serious" if serious else "minor",
            occurred_at=p.online_at,
            summary=summary,
            column=p.column,
            post_id=post.post_id if post else None,
            publication_id=p.publication_id,
        ),
    )


def late_publication(
    refreshed: ColumnRefreshed,
    event_id: str,
    at: datetime,
    post: PostFacts | None,
    held: Holders,
) -> Verdict | None:
    """An item due within N days of its trigger went online after its deadline.

    One late item is one lapse, however many rule sets saw it late (the key is the item). The
    people are those who answered when it went online: fixed at its publication when gongkai
    saw it, else the unit's leaders at that business time, not when freshness's reaction lands.
    """
    p = refreshed
    if p.resolution != "published" or p.rule_kind not in TRIGGERED_KINDS or not p.late_days:
        return None
    item = p.post_id or f"{p.rule_kind}-{p.due_date.isoformat()}"
    # The refresh itself is always evidence; the stale event only when freshness named one.
    evidence = (*((p.stale_event_id,) if p.stale_event_id else ()), event_id)
    if post is not None:
        evidence = (post.submitted_event_id, *evidence)
    if post is not None and post.published_responsible is not None:
        people: Sequence[Person] = post.published_responsible
    else:
        people = answering_for(
            post, p.unit, held, when=p.last_publication_at or day_end(p.met_on or p.due_date)
        )
    return Verdict(
        f"{p.unit}:{p.column}:{item}",
        ViolationRecorded(
            responsible=_named(people),
            kind="late_publication",
            unit=p.unit,
            evidence=evidence,
            severity="minor",
            occurred_at=at,
            summary=(
                f"{p.column} item {'for post ' + p.post_id if p.post_id else ''} went online "
                f"{p.late_days} day(s) after its due date {p.due_date} ({p.rule_set} {p.rule})"
            ),
            column=p.column,
            post_id=p.post_id,
        ),
    )


def stale_after_supervision(case: CaseFacts, today: date, held: Holders) -> Verdict | None:
    """The column is still stale the day after the notice's deadline: once per case.

    The unit's leaders and makers when the deadline passed answer, by business time: not
    whoever holds the role on the day a tick happens to decide it.
    """
    deadline = case.deadline
    if case.over or case.breach is not None or deadline is None or today <= deadline:
        return None
    assert case.notice_event_id is not None  # a deadline comes with its notice
    people = responsible(case.unit, held, when=day_end(deadline), kept=True)
    return Verdict(
        case.case_id,
        ViolationRecorded(
            responsible=_named(people),
            kind="stale_after_supervision",
            unit=case.unit,
            evidence=(*case.stale_event_ids, case.notice_event_id),
            severity="serious",
            occurred_at=day_end(deadline),
            summary=(
                f"{case.column} still stale after the supervision deadline {deadline} "
                f"(notice of {case.issued_on})"
            ),
            column=case.column,
            case_id=case.case_id,
        ),
    )


def wrong_information(
    finding: FindingFacts,
    confirmed_event_id: str,
    at: datetime,
    post: PostFacts | None,
    publisher: Person | None,
    held: Holders,
) -> Verdict:
    """A finding the office confirmed: information published incomplete, inaccurate or false.

    ``post``: the post it is about (directly or through its publication); ``publisher``: who
    reported the publication online, answering if a person of the unit.
    """
    f = finding
    people = answering_for(post, f.unit, held, published_by=publisher)
    return Verdict(
        f.finding_id,
        ViolationRecorded(
            responsible=_named(people),
            kind="wrong_information",
            unit=f.unit,
            evidence=(f.reported_event_id, confirmed_event_id),
            severity="serious" if f.kind in SERIOUS_FINDINGS else "minor",
            occurred_at=at,
            summary=f"finding {f.finding_id} ({f.kind}) confirmed: {f.description[:200]}",
            column=f.column,
            post_id=f.post_id or (post.post_id if post else None),
            publication_id=f.publication_id,
            finding_id=f.finding_id,
        ),
    )
