"""``evolve``: how each event of the log changes the accountability read model.

Pure: no clock, no I/O beyond the ``Rows`` it is handed. The fold gathers facts; the notice's
rules are not worded here: a violation is ``violations``' verdict, who answers for it
``responsibility.responsible``'s, a case's end ``supervision.case_closed``'s, a rectification
the log shows ``violation.rectified_by_removal``'s or ``rectified_by_refresh``'s, a finding's
answer ``finding.resolved_by``'s. What
they decide is written as an *obligation* (``pending.Pending``) in the ``todo`` table, keyed
by the command id that will discharge it; the service turns obligations into events
(``decide``), and when such an event comes back through the log its obligation is struck out.
Because the command id fixes the event id and the aggregate id, an obligation can be
discharged only once, whatever restarts or replays happen between.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import Any, Literal, TypeVar

from gongkai.calendar import local_date
from gongkai.events import Envelope
from gongkai.events.contracts.accountability import IntegrityAlert
from gongkai.subjects import event_subject
from gongkai_accountability.domain.codec import maker, replace
from gongkai_accountability.domain.finding import resolved_by
from gongkai_accountability.domain.pending import Pending
from gongkai_accountability.domain.responsibility import Holders, Person, person_of, responsible
from gongkai_accountability.domain.rows import R, Rows, Table
from gongkai_accountability.domain.supervision import case_closed
from gongkai_accountability.domain.tables import (
    ALERT,
    CASE,
    COLUMN,
    FINDING,
    POST,
    PUBLICATION,
    TODO,
    UNIT,
    VIOLATION,
    Alert,
    Case,
    Closed,
    Column,
    Confirmation,
    Decision,
    Episode,
    Finding,
    Form,
    Grant,
    Notice,
    PastEpisode,
    Post,
    Publication,
    Rectified,
    Resolution,
    Step,
    Todo,
    Unit,
    Violation,
)
from gongkai_accountability.domain.violation import (
    rectified_by_refresh,
    rectified_by_removal,
    rectify_command_id,
)
from gongkai_accountability.domain.violations import (
    FindingFacts,
    PostFacts,
    Verdict,
    late_publication,
    published_without_review,
    wrong_information,
)

#: A row a finding can be about.
Found = TypeVar("Found", Post, Publication)


def short_id(prefix: str, key: str) -> str:
    """A subject-safe aggregate id derived from a decision's key."""
    return f"{prefix}-{hashlib.sha256(key.encode()).hexdigest()[:20]}"


def actor_of(env: Envelope[Any]) -> dict[str, str]:
    a = env.actor
    return {"person": a.person, "role": a.role, "unit": a.unit}


# The read model keeps a Person for every post's maker and everyone who answers for it, and a
# Form for every post, and they are few: one object for each (person, role, unit)
# (``responsibility.person_of``), each list of who answers and each form. Rows are never changed
# in place, so sharing is safe; what it saves is the cyclic collector's work. Each of them is
# an object it tracks, and a full collection visits every one kept (on bench_accountability's
# county of 10,000 posts: 131,000 objects kept, 50,000 of them these).
_FORMS: dict[tuple[str, str | None, str, bool, date], Form] = {}
_ANSWERING: dict[tuple[Person, ...], tuple[Person, ...]] = {}


def _one_of(people: tuple[Person, ...]) -> tuple[Person, ...]:
    """``people``, as the one equal tuple already kept (see above)."""
    found = _ANSWERING.get(people)
    if found is None:
        if len(_ANSWERING) > 4096:
            _ANSWERING.clear()
        found = _ANSWERING[people] = people
    return found


def _form(origin: str, source: str | None, channel: str, unsure: bool, day: date) -> Form:
    """Attachment 1's boxes, one Form for each (see above): found by the values
    themselves, as a tuple hashes them, before a Form is made (hashing a Form costs more)."""
    key = (origin, source, channel, unsure, day)
    found = _FORMS.get(key)
    if found is None:
        if len(_FORMS) > 4096:
            _FORMS.clear()
        found = _FORMS[key] = Form(origin, source, channel, unsure, day.isoformat())
    return found


def _actor(env: Envelope[Any]) -> Person:
    a = env.actor
    return person_of(a.person, a.role, a.unit)


#: The last time ``iso`` formatted: (time, its tzinfo, its fold, the text), one tuple so a
#: reader never sees half of another thread's update.
_LAST_ISO: tuple[datetime | None, Any, int, str] = (None, None, 0, "")


def iso(ts: datetime) -> str:
    """``ts.isoformat()``, remembered for the next call: the fold asks for an event's two
    times, and for each of its steps, mostly one instant. Two times with the same tzinfo
    object compare by their fields, without asking the zone for an offset; equal fields,
    zone and fold print the same.

    Only the last time is kept. A dict of the times formatted (keyed by the time and its
    offset, as equal instants in different zones print differently) cost more on a miss than
    the formatting it saved: the key's offset and the aware time's hash each ask the zone,
    4.8 µs against ``isoformat``'s 2.5 where each post's first event brings a new instant,
    and a log's times seldom come back once another has come between.
    """
    global _LAST_ISO
    last, tz, fold, text = _LAST_ISO
    if ts.tzinfo is tz and tz is not None and ts == last and ts.fold == fold:
        return text
    s = ts.isoformat()
    _LAST_ISO = (ts, ts.tzinfo, ts.fold, s)
    return s


#: ``Step(...)`` by position at half the cost: the fold makes one for nearly every event.
_make_step = maker(Step)
#: ``Post(...)`` and ``Publication(...)`` by name at about half the cost: one of each for
#: every post submitted and every item online.
_make_post = maker(Post, by_name=True)
_make_publication = maker(Publication, by_name=True)


def step(env: Envelope[Any], seq: int, what: str, **detail: Any) -> Step:
    """One line of a chain of custody: who did what, when, on which content (``detail``:
    the step's further keys, None for what it does not say)."""
    return said(env, seq, what, {k: v for k, v in detail.items() if v is not None})


def said(env: Envelope[Any], seq: int, what: str, detail: dict[str, Any]) -> Step:
    """``step`` with its detail made by the caller, in its order, without a None value: the
    steps every post takes (submitted, signed, concluded, published) build theirs directly,
    one dict where the keywords and then their filtered copy made two (1.6 -> 0.5 µs)."""
    a = env.actor
    return _make_step(
        seq,
        env.event_id,
        what,
        iso(env.business_time),
        iso(env.recorded_at),
        a.person,
        a.role,
        a.unit,
        detail,
    )


def _unit(rows: Rows, code: str) -> Unit:
    return rows.get(UNIT, code) or Unit.unknown(code)


def holders(rows: Rows, unit: str, role: str) -> list[str]:
    return sorted(_unit(rows, unit).roles.get(role, ()))


def _first(item: Grant) -> str:
    return item[0]


def holders_at(rows: Rows, unit: str, role: str, when: datetime) -> list[str]:
    """Who held ``role`` in ``unit`` at the business time ``when``.

    A verdict names the people responsible when the lapse happened, not whoever holds the role
    when some service's reaction happens to be folded: grants and revocations are replayed by
    their own business time, so the answer does not depend on where they sit in the log
    relative to other services' reactions.
    """
    people: set[str] = set()
    for at, r, person, granted in _by_time(_unit(rows, unit).history or ()):
        if r != role or at > when:
            continue
        if granted:
            people.add(person)
        else:
            people.discard(person)
    return sorted(people)


#: A unit's history as ``holders_at`` reads it, by the history tuple's identity: (the tuple,
#: kept so its id is not reused, and its grants sorted with their times parsed). Every
#: leader signature asks it (the authority check), and sorting the grants and parsing each
#: time again was a twentieth of the fold; a unit's history changes only with the directory.
_BY_TIME: dict[int, tuple[tuple[Grant, ...], tuple[tuple[datetime, str, str, bool], ...]]] = {}


def _by_time(history: tuple[Grant, ...]) -> tuple[tuple[datetime, str, str, bool], ...]:
    """``history`` sorted by business time (a grant recorded late but dated earlier still
    counts), each time parsed."""
    found = _BY_TIME.get(id(history))
    if found is not None and found[0] is history:
        return found[1]
    parsed = tuple(
        (datetime.fromisoformat(at), r, person, granted)
        for at, r, person, granted in sorted(history, key=_first)
    )
    if len(_BY_TIME) > 4096:
        _BY_TIME.clear()
    _BY_TIME[id(history)] = (history, parsed)
    return parsed


def _oblige(rows: Rows, pending: Pending) -> None:
    # An obligation already discharged (its event is in the log before this point) is never
    # re-created: the ledger of done keys lives in the violation/case/finding rows.
    rows.put(TODO, pending.command_id, pending.todo())


def held_in(rows: Rows, unit: str) -> Holders:
    """Who held a role in ``unit`` at a business time, as ``responsible`` asks it: by the
    directory then, or as it stands now when that names nobody (or no time is given)."""

    def held(role: str, when: datetime | None) -> list[str]:
        then = holders_at(rows, unit, role, when) if when is not None else []
        return then or holders(rows, unit, role)

    return held


def _post_facts(rows: Rows, post_id: str | None) -> PostFacts | None:
    post = rows.get(POST, post_id) if post_id else None
    return PostFacts.of(post) if post is not None else None


def _record(rows: Rows, verdict: Verdict | None) -> None:
    """Oblige the verdict's ViolationRecorded, unless this lapse has one already."""
    if verdict is None:
        return
    command_id = verdict.command_id
    vid = short_id("V", command_id)
    if rows.get(VIOLATION, vid) is not None or rows.get(TODO, command_id) is not None:
        # The first fact that demands a violation words it: a later one (a second rule set
        # seeing the same late item) must not reword it depending on whether accountability
        # happened to decide in between.
        return
    _oblige(rows, Pending(command_id, verdict.violation.unit, vid, verdict.violation))


# ---- the fold ---------------------------------------------------------------------------


class _Caused:
    """The rows as a handler sees them while it folds ``env``: an obligation it writes is
    caused by ``env`` (the fact whose arrival decided it), and keeps the first cause it had."""

    __slots__ = ("_env", "_rows", "get")

    #: The rows' own ``get``, bound once: a handler reads three or four rows an event, and a
    #: method passing each read on was a call more every time.
    get: Callable[[Table[Any], str], Any]

    def __init__(self, rows: Rows, env: Envelope[Any]) -> None:
        self._rows = rows
        self.get = rows.get
        # The cause is read only when an obligation is written (a few events in a thousand).
        self._env = env

    def put(self, table: Table[R], key: str, row: R) -> None:
        if isinstance(row, Todo) and row.cause is None:
            before = self._rows.get(TODO, key)
            env = self._env
            cause = (
                before.cause
                if before is not None and before.cause
                else (env.event_id, env.correlation_id)
            )
            # Built, not replace()d: an obligation is written for every lapse found.
            caused = Todo(row.unit, row.event, row.aggregate_id, row.payload, cause)
            self._rows.put(TODO, key, caused)
            return
        self._rows.put(table, key, row)

    def delete(self, table: Table[Any], key: str) -> None:
        self._rows.delete(table, key)

    def scan(self, table: Table[R]) -> Iterator[tuple[str, R]]:
        return self._rows.scan(table)


def evolve(rows: Rows, env: Envelope[Any], seq: int) -> None:
    """Apply one recorded event (at stream sequence ``seq``) to the read model."""
    handler = _HANDLERS.get(env.type)
    if handler is not None:
        handler(_Caused(rows, env), env, seq)
    if rows.get(TODO, env.command_id) is not None:
        rows.delete(TODO, env.command_id)


def _no_granter(rows: Rows, env: Envelope[Any]) -> str | None:
    """Why the actor of a directory change could not make it (as gongkai.directory decides)."""
    a = env.actor
    if a.unit == "system":
        return None
    if a.role == "office" and a.person in holders_at(rows, a.unit, "office", env.business_time):
        return None
    return f"{a.person} ({a.role}, {a.unit}) may not change the directory"


def _directory(rows: Rows, env: Envelope[Any], seq: int) -> None:
    p = env.payload
    why = _no_granter(rows, env)
    if why is not None:
        _alert(rows, env, seq, "authority", why)
        return
    if env.type == "UnitRegistered":
        u = _unit(rows, p.code)
        u = replace(
            u,
            registered_at=u.registered_at or env.business_time.isoformat(),
            name=p.name,
            kind=p.kind,
            # Attachment 2's header names the unit's disclosure contact.
            contact={"name": p.contact_name, "mobile": p.contact_mobile},
        )
        rows.put(UNIT, p.code, u)
    elif env.type in ("RoleGranted", "RoleRevoked"):
        u = _unit(rows, p.unit)
        people = set(u.roles.get(p.role, ()))
        granted = env.type == "RoleGranted"
        if granted:
            people.add(p.person_id)
        else:
            people.discard(p.person_id)
        grant: Grant = (iso(env.business_time), p.role, p.person_id, granted)
        u = replace(
            u,
            roles={**u.roles, p.role: tuple(sorted(people))},
            history=(*(u.history or ()), grant),
        )
        rows.put(UNIT, p.unit, u)


def _post(rows: Rows, env: Envelope[Any], seq: int) -> None:
    p = env.payload
    post_id = env.aggregate_id
    post = rows.get(POST, post_id)
    flagged = bool(
        getattr(p, "screening", None) and (p.screening.needs_secrecy_review or p.screening.spans)
    )
    if env.type == "PostSubmitted":
        post = _make_post(
            post_id=post_id,
            unit=p.unit,
            column=p.column,
            title=p.title,
            important_kind=p.important_kind,
            # Attachment 1's boxes as the maker ticked them: the printed form shows them.
            form=_form(p.origin, p.source, p.channel, p.maker_unsure, p.information_date),
            maker=_actor(env),
            digest=p.content_digest,
            version=p.content_version,
            flagged_digests=(p.content_digest,) if flagged else (),
            approved={},
            leader_signers=(),
            publications=(),
            withdrawn=False,
            trail=(said(env, seq, "submitted", _submitted(p)),),
        )
    elif post is None:
        return  # a revision of a post never submitted: nothing to hang it on
    elif env.type == "PostRevised":
        makers = post.made_by()
        # A revision ends the standing of every earlier approval by itself: review's void
        # (ReviewConcluded voided) is a reaction that may land before or after a publication
        # report, and the verdict must not depend on which (docs/accountability.md, "Facts").
        post = replace(
            post,
            makers=makers if env.actor.person in makers else (*makers, env.actor.person),
            approved={},
            digest=p.content_digest,
            version=p.content_version,
            title=p.title,
            flagged_digests=(
                (*post.flagged_digests, p.content_digest) if flagged else post.flagged_digests
            ),
            trail=(
                *post.trail,
                step(env, seq, "revised", digest=p.content_digest, version=p.content_version),
            ),
        )
        _answer_findings(rows, post_id, None, env, "revised")
    elif env.type == "PostWithdrawn":
        post = replace(
            post,
            approved={},
            withdrawn=True,
            trail=(*post.trail, step(env, seq, "withdrawn", reason=p.reason)),
        )
    rows.put(POST, post_id, post)


def _submitted(p: Any) -> dict[str, Any]:
    """A submission's step says: its digest, version, title, kind, whether screening asked
    for the secrecy review and how much personal data it found (``step``'s keys, in order)."""
    detail = {"digest": p.content_digest, "version": p.content_version, "title": p.title}
    if p.important_kind is not None:
        detail["important_kind"] = p.important_kind
    detail["needs_secrecy_review"] = p.screening.needs_secrecy_review
    if p.screening.spans:
        detail["personal_data"] = len(p.screening.spans)
    return detail


def _no_authority(rows: Rows, env: Envelope[Any], post: Post) -> str | None:
    """Why the signer of a ReviewSigned could not sign, by the directory at its business time.

    Review's signature on the event proves review recorded it, not that review was right (or
    that review's key was not misused): the stage's role in the post's unit, held when the
    signature was given, and no self-approval by a maker, are checked again here.
    """
    p = env.payload
    s = p.signer
    if s.unit != post.unit or s.role != p.stage:
        return f"signer {s.person} acted as {s.role} of {s.unit} on a post of {post.unit}"
    if s.person not in holders_at(rows, post.unit, p.stage, env.business_time):
        return (
            f"{s.person} did not hold the {p.stage} role in {post.unit} at "
            f"{iso(env.business_time)}"
        )
    if p.stage == "leader" and s.person in post.made_by():
        return f"{s.person} made post {post.post_id} and may not approve it"
    return None


def _alert(rows: Rows, env: Envelope[Any], seq: int, check: str, detail: str) -> None:
    """Oblige an IntegrityAlert for the event at ``seq``: it was not applied."""
    command_id = f"integrity:{seq}"
    if rows.get(ALERT, str(seq)) is not None or rows.get(TODO, command_id) is not None:
        return
    alert = IntegrityAlert(
        sequence=seq,
        # Cut to the contract's bounds here: the fold must not fail on what it refuses.
        subject=event_subject(env.aggregate_type, env.aggregate_id, env.type)[:600],
        check=check,  # type: ignore[arg-type]
        detail=detail[:1000],
        claimed_event_id=env.event_id,
        claimed_type=env.type,
    )
    _oblige(rows, Pending(command_id, "", f"seq-{seq}", alert))


def _review(rows: Rows, env: Envelope[Any], seq: int) -> None:
    p = env.payload
    post = rows.get(POST, p.post_id)
    if post is None:
        return
    if env.type == "ReviewSigned":
        why = _no_authority(rows, env, post)
        if why is not None:
            # Never an approval: the chain it claims to belong to approves nothing.
            tainted = (*(post.tainted_chains or ()), p.chain)
            rows.put(POST, p.post_id, replace(post, tainted_chains=tainted))
            _alert(rows, env, seq, "authority", why)
            return
        s = p.signer
        detail: dict[str, Any] = {"digest": p.content_digest, "decision": p.decision}
        if p.opinion is not None:
            detail["opinion"] = p.opinion
        detail["chain"] = p.chain
        detail["signer"] = s.person
        detail["signer_role"] = s.role
        detail["signer_unit"] = s.unit
        signed = said(env, seq, f"signed:{p.stage}", detail)
        if p.stage == "leader" and p.decision == "agree":
            post = replace(
                post,
                trail=(*post.trail, signed),
                leader_signers=post.leader_signers
                if s.person in post.leader_signers
                else (*post.leader_signers, s.person),
                # The chains an approval may stand on: a believed leader's agreement of that
                # digest.
                agreed={**(post.agreed or {}), str(p.chain): p.content_digest},
            )
        else:
            post = replace(post, trail=(*post.trail, signed))
    else:  # ReviewConcluded
        chain = str(p.chain)
        stands = None
        if p.outcome == "approved" and (
            p.chain in (post.tainted_chains or ())
            or (post.agreed or {}).get(chain) != p.content_digest
        ):
            # An approval nobody with the authority agreed to: not history, an alert.
            _alert(
                rows,
                env,
                seq,
                "authority",
                f"approves chain {p.chain} of {p.post_id} without a believed leader's agreement",
            )
            return
        approved = post.approved
        if p.outcome == "approved":
            if _approves_current(post, p):
                approved = {**approved, chain: p.content_digest}
            else:
                # Decided on content a revision or withdrawal had already overtaken in the log:
                # it approves nothing (review voids the chain when it reads the revision).
                stands = False
        elif chain in approved:
            approved = {c: d for c, d in approved.items() if c != chain}
        detail = {"digest": p.content_digest, "chain": p.chain}
        if p.reason is not None:
            detail["reason"] = p.reason
        if stands is not None:
            detail["stands"] = stands
        concluded = said(env, seq, f"review:{p.outcome}", detail)
        post = replace(post, approved=approved, trail=(*post.trail, concluded))
    rows.put(POST, p.post_id, post)


def _approves_current(post: Post, p: Any) -> bool:
    """An approval stands only for the post's current, not withdrawn, content version."""
    if post.withdrawn or p.content_digest != post.digest:
        return False
    return p.content_version is None or p.content_version == post.version


def _publication(rows: Rows, env: Envelope[Any], seq: int) -> None:
    p = env.payload
    pub_id = p.publication_id
    post = rows.get(POST, p.post_id) if p.post_id else None
    if env.type == "PostPublished":
        pub = _went_online(
            env, seq, "published", p.post_id,
            reported_by=p.reported_by, redated=p.redated or None,
        )
        rows.put(PUBLICATION, pub_id, pub)
        facts: PostFacts | None = None
        if post is not None:
            facts = PostFacts.of(post)
            # Who answers for the item going online, fixed when it did: a late-publication
            # verdict (freshness's ColumnRefreshed, a reaction) names these people however
            # many signatures or role changes land between the publication and it.
            answered = facts.published_responsible
            if answered is None:
                answered = responsible(
                    p.unit,
                    held_in(rows, p.unit),
                    made_by=facts.maker,
                    approved_by=facts.leader_signers,
                )
            answered = _one_of(answered)
            post = replace(
                post,
                trail=(*post.trail, pub.trail[0]),
                publications=(*post.publications, pub_id),
                published_responsible=answered,
            )
            rows.put(POST, post.post_id, post)
        _check_review(rows, env, pub, facts)
    else:  # PublicationRemoved
        known = rows.get(PUBLICATION, pub_id)
        s = step(
            env,
            seq,
            "removed",
            publication_id=pub_id,
            reason=p.reason,
            removed_at=p.removed_at.isoformat(),
        )
        if known is not None:
            known = replace(known, removed=True, trail=(*known.trail, s))
            rows.put(PUBLICATION, pub_id, known)
            if known.unreviewed_violation:
                _oblige_rectify(rows, known.unreviewed_violation, known.unit, env)
        if post is not None:
            rows.put(POST, post.post_id, replace(post, trail=(*post.trail, s)))
        _answer_findings(rows, p.post_id, pub_id, env, "removed")


def _went_online(
    env: Envelope[Any], seq: int, what: str, post_id: str | None, **told: Any
) -> Publication:
    """A publication's row as it went online (``PostPublished``) or was imported: the
    content's digest, where and when it is online, and a first step saying so (``what``,
    with what the event ``told`` besides)."""
    p = env.payload
    online_at = iso(p.online_at)
    detail: dict[str, Any] = {"digest": p.content_digest} if p.content_digest is not None else {}
    detail["publication_id"] = p.publication_id
    if p.url is not None:
        detail["url"] = p.url
    detail["online_at"] = online_at
    for k, v in told.items():
        if v is not None:
            detail[k] = v
    first = said(env, seq, what, detail)
    return _make_publication(
        publication_id=p.publication_id,
        post_id=post_id,
        unit=p.unit,
        column=p.column,
        digest=p.content_digest,
        online_at=online_at,
        removed=False,
        event_id=env.event_id,
        trail=(first,),
    )


def imported_publication(env: Envelope[Any], seq: int) -> Publication:
    """An item of the site's history (``PublicationImported``) as the read model keeps it."""
    p = env.payload
    pub = _went_online(env, seq, "imported", None, title=p.title)
    return replace(pub, title=p.title, url=p.url, imported=True)


def _imported(rows: Rows, env: Envelope[Any], seq: int) -> None:
    """An item of the site's history (``gongkai import``): a publication on its own day, never
    judged for review — nobody reviewed it here, and it went online before gongkai watched."""
    p = env.payload
    day = local_date(p.online_at).isoformat()
    rows.put(PUBLICATION, p.publication_id, imported_publication(env, seq))
    # Asked as of a day before the unit joined, the unit is known by its history alone.
    u = _unit(rows, p.unit)
    if u.history_from is None or day < u.history_from:
        rows.put(UNIT, p.unit, replace(u, history_from=day))


def _check_review(
    rows: Rows, env: Envelope[Any], pub: Publication, post: PostFacts | None
) -> None:
    p = env.payload
    # When the unit joined matters only for an item gongkai never saw: read it only then.
    unit = rows.get(UNIT, p.unit) if post is None else None
    joined = unit.registered_at if unit is not None else None
    verdict = published_without_review(
        p,
        env.event_id,
        _actor(env),
        post,
        datetime.fromisoformat(joined) if joined else None,
        held_in(rows, p.unit),
    )
    if verdict is None:
        return
    _record(rows, verdict)
    vid = short_id("V", verdict.command_id)
    rows.put(PUBLICATION, p.publication_id, replace(pub, unreviewed_violation=vid))


def _oblige_rectify(
    rows: Rows, vid: str, unit: str, env: Envelope[Any]
) -> None:
    v = rows.get(VIOLATION, vid)
    rectified = rectified_by_removal(
        vid, unit, rectified=v is not None and v.rectified is not None,
        removed_event_id=env.event_id, at=env.business_time,
    )
    if rectified is not None:
        _oblige(rows, Pending(rectify_command_id(vid), unit, vid, rectified))


# ---- columns and supervision --------------------------------------------------------------


def _column_row(rows: Rows, unit: str, column: str) -> Column:
    return rows.get(COLUMN, f"{unit}--{column}") or Column(
        unit=unit, column=column, open={}, case=None, cases=0, hidden=False, late={}
    )


def _column(rows: Rows, env: Envelope[Any], seq: int) -> None:
    p = env.payload
    key = f"{p.unit}--{p.column}"
    col = _column_row(rows, p.unit, p.column)
    if env.type == "ColumnStale":
        episode = f"{p.rule_set}/{p.rule}/{p.episode}"
        opened = {
            **col.open,
            episode: Episode(
                event_id=env.event_id,
                due_date=p.due_date.isoformat(),
                rule_kind=p.rule_kind,
                rule=p.rule,
                rule_set=p.rule_set,
                post_id=p.post_id,
                since=local_date(env.business_time).isoformat(),
            ),
        }
        current = rows.get(CASE, col.case) if col.case is not None else None
        # Every episode of the current case was refreshed (closing): its SupervisionClosed
        # (accountability's own reaction) may not be recorded yet. A new staleness is a new
        # case either way.
        if col.case is not None and not (current is not None and current.closing):
            col = replace(col, open=opened)
            if current is not None and env.event_id not in current.stale_event_ids:
                rows.put(
                    CASE,
                    current.case_id,
                    replace(
                        current,
                        stale_event_ids=(*current.stale_event_ids, env.event_id),
                        cause=(env.event_id, env.correlation_id),
                    ),
                )
        else:
            case_id = f"{p.unit}--{p.column}--{col.cases + 1}"
            col = replace(col, open=opened, cases=col.cases + 1, case=case_id)
            rows.put(
                CASE,
                case_id,
                Case(
                    case_id=case_id,
                    unit=p.unit,
                    column=p.column,
                    status="open",
                    opened_on=local_date(env.business_time).isoformat(),
                    stale_event_ids=(env.event_id,),
                    # The latest ColumnStale of the case: the automatic notice's cause.
                    cause=(env.event_id, env.correlation_id),
                ),
            )
    elif env.type == "ColumnRefreshed":
        episode = f"{p.rule_set}/{p.rule}/{p.episode}"
        if episode in col.open:
            col = replace(col, open={k: e for k, e in col.open.items() if k != episode})
        _record(
            rows,
            late_publication(
                p, env.event_id, env.business_time, _post_facts(rows, p.post_id),
                held_in(rows, p.unit),
            ),
        )
        if not col.open and col.case is not None:
            case = rows.get(CASE, col.case)
            if case is not None and case.status != "closed":
                case = replace(
                    case,
                    refreshed=(*(case.refreshed or ()), env.event_id),
                    # The day the column was put right (the item's own online day when it
                    # went online), not the day freshness's reaction was recorded.
                    closing=(p.met_on or local_date(env.business_time)).isoformat(),
                )
                rows.put(CASE, col.case, case)
                _oblige_close(rows, case)
        elif col.case is not None:
            case = rows.get(CASE, col.case)
            if case is not None:
                rows.put(
                    CASE,
                    col.case,
                    replace(case, refreshed=(*(case.refreshed or ()), env.event_id)),
                )
    elif env.type == "ColumnWasStale":
        # History: an episode before the unit joined. No case, no violation: nobody was
        # watching; ``report.stale_columns`` counts it for the days it covers.
        past = PastEpisode(
            due_date=p.due_date.isoformat(),
            until=p.until.isoformat(),
            rule_set=p.rule_set,
            rule=p.rule,
        )
        history = {**(col.history or {}), f"{p.rule_set}/{p.rule}/{past.due_date}": past}
        col = replace(col, history=history)
    elif env.type in ("ColumnHidden", "ColumnKept"):
        col = replace(
            col,
            hidden=env.type == "ColumnHidden",
            # Attachment 2's tick: who ticked ✓ or ×, when and why.
            decision=Decision(
                keep=env.type == "ColumnKept",
                by=_actor(env),
                at=iso(env.business_time),
                reason=p.reason,
            ),
        )
    rows.put(COLUMN, key, col)


def _oblige_close(rows: Rows, case: Case) -> None:
    assert case.closing is not None  # every episode refreshed
    notice = case.notice
    refreshed = case.refreshed or ()
    closed = case_closed(
        case.case_id,
        case.unit,
        case.column,
        deadline=date.fromisoformat(notice.deadline) if notice is not None else None,
        closed_on=date.fromisoformat(case.closing),
        refreshed=refreshed,
    )
    _oblige(rows, Pending(f"supervision-closed:{case.case_id}", case.unit, case.case_id, closed))
    vid = case.breach
    if not vid:
        return
    # Rectified already (the office may do it by hand before the column is refreshed): no
    # second rectification is owed, and an obligation nobody discharges must not linger.
    breach = rows.get(VIOLATION, vid)
    rectified = rectified_by_refresh(
        vid, case.unit, rectified=breach is not None and breach.rectified is not None,
        refreshed=refreshed, closed_on=closed.closed_on,
    )
    if rectified is not None:
        _oblige(rows, Pending(rectify_command_id(vid), case.unit, vid, rectified))


def _supervision_issued(rows: Rows, env: Envelope[Any], seq: int) -> None:
    p = env.payload
    case = rows.get(CASE, p.case_id)
    if case is None:
        return
    notice = Notice(
        event_id=env.event_id,
        correlation_id=env.correlation_id,
        issued_on=p.issued_on.isoformat(),
        deadline=p.deadline.isoformat(),
        working_days=p.working_days,
        provisional=p.provisional,
        automatic=p.automatic,
        by=_actor(env),
    )
    rows.put(CASE, p.case_id, replace(case, status="issued", notice=notice))


def _supervision_closed(rows: Rows, env: Envelope[Any], seq: int) -> None:
    p = env.payload
    case = rows.get(CASE, p.case_id)
    if case is None:
        return
    closed = Closed(event_id=env.event_id, outcome=p.outcome, closed_on=p.closed_on.isoformat())
    rows.put(CASE, p.case_id, replace(case, status="closed", closed=closed))
    col = _column_row(rows, p.unit, p.column)
    if col.case == p.case_id:
        rows.put(COLUMN, f"{p.unit}--{p.column}", replace(col, case=None))


# ---- findings -------------------------------------------------------------------------------


def _answer_findings(
    rows: Rows,
    post_id: str | None,
    pub_id: str | None,
    env: Envelope[Any],
    how: Literal["revised", "removed"],
) -> None:
    ids: list[str] = []
    post = rows.get(POST, post_id) if post_id else None
    if post is not None:
        ids += post.findings or ()
    pub = rows.get(PUBLICATION, pub_id) if pub_id else None
    if pub is not None:
        ids += pub.findings or ()
    for fid in sorted(set(ids)):
        f = rows.get(FINDING, fid)
        if f is None:
            continue
        resolved = resolved_by(
            fid, f.unit, f.status, how=how, event_id=env.event_id  # type: ignore[arg-type]
        )
        if resolved is not None:
            _oblige(rows, Pending(f"finding-resolved:{fid}", f.unit, fid, resolved))


def _found(row: Found, finding_id: str, found: Step) -> Found:
    """A post or publication with a finding reported about it."""
    return replace(row, findings=(*(row.findings or ()), finding_id), trail=(*row.trail, found))


def _finding(rows: Rows, env: Envelope[Any], seq: int) -> None:
    p = env.payload
    if env.type == "FindingReported":
        # The report as the event gives it (its day in ISO form), and who reported it.
        reported = Finding.decode(
            {
                **p.model_dump(mode="json"),
                "reported_by": actor_of(env),
                "event_id": env.event_id,
                "status": "reported",
            }
        )
        rows.put(FINDING, p.finding_id, reported)
        found = step(env, seq, "finding", finding_id=p.finding_id, kind=p.kind)
        post = rows.get(POST, p.post_id) if p.post_id else None
        if post is not None:
            rows.put(POST, post.post_id, _found(post, p.finding_id, found))
        pub = rows.get(PUBLICATION, p.publication_id) if p.publication_id else None
        if pub is not None:
            rows.put(PUBLICATION, pub.publication_id, _found(pub, p.finding_id, found))
        return
    f = rows.get(FINDING, p.finding_id)
    if f is None:
        return
    if env.type == "FindingResolved":
        f = replace(
            f,
            status="resolved",
            answer=Resolution(p.how, tuple(p.evidence), env.event_id),
        )
    else:  # FindingConfirmed
        f = replace(
            f,
            status="confirmed",
            answer=Confirmation(p.note, env.event_id, _actor(env)),
        )
        post = rows.get(POST, f.post_id) if f.post_id else None
        pub = rows.get(PUBLICATION, f.publication_id) if f.publication_id else None
        if post is None and pub is not None and pub.post_id:
            post = rows.get(POST, pub.post_id)
        _record(
            rows,
            wrong_information(
                FindingFacts.of(f),
                env.event_id,
                env.business_time,
                PostFacts.of(post) if post is not None else None,
                # The publication's first step is its PostPublished: who reported it online.
                pub.trail[0].actor if pub is not None else None,
                held_in(rows, f.unit),
            ),
        )
    rows.put(FINDING, p.finding_id, f)


# ---- violations -----------------------------------------------------------------------------


def _violation(rows: Rows, env: Envelope[Any], seq: int) -> None:
    p = env.payload
    vid = env.aggregate_id
    if env.type == "ViolationRecorded":
        # The payload's own JSON (its times as the event prints them), and where it is kept.
        recorded = Violation.decode(
            {
                **p.model_dump(mode="json"),
                "violation_id": vid,
                "event_id": env.event_id,
                "recorded_at": env.recorded_at.isoformat(),
                "rectified": None,
            }
        )
        rows.put(VIOLATION, vid, recorded)
        if p.case_id:
            case = rows.get(CASE, p.case_id)
            if case is not None:
                rows.put(CASE, p.case_id, replace(case, breach=vid))
        post = rows.get(POST, p.post_id) if p.post_id else None
        if post is not None:
            recorded_step = step(env, seq, "violation", violation_id=vid, kind=p.kind)
            rows.put(POST, post.post_id, replace(post, trail=(*post.trail, recorded_step)))
    else:
        v = rows.get(VIOLATION, p.violation_id)
        if v is None:
            return
        rectified = Rectified(p.how, p.rectified_at.isoformat(), env.event_id)
        rows.put(VIOLATION, p.violation_id, replace(v, rectified=rectified))


def _integrity(rows: Rows, env: Envelope[Any], seq: int) -> None:
    p = env.payload
    # The alert as the event gives it, and when accountability recorded it.
    alert = Alert.decode(
        {**p.model_dump(mode="json"), "event_id": env.event_id, "recorded_at": iso(env.recorded_at)}
    )
    rows.put(ALERT, str(p.sequence), alert)


_HANDLERS: dict[str, Any] = {
    "IntegrityAlert": _integrity,
    "UnitRegistered": _directory,
    "RoleGranted": _directory,
    "RoleRevoked": _directory,
    "PostSubmitted": _post,
    "PostRevised": _post,
    "PostWithdrawn": _post,
    "ReviewSigned": _review,
    "ReviewConcluded": _review,
    "PostPublished": _publication,
    "PublicationRemoved": _publication,
    "PublicationImported": _imported,
    "ColumnStale": _column,
    "ColumnRefreshed": _column,
    "ColumnWasStale": _column,
    "ColumnHidden": _column,
    "ColumnKept": _column,
    "SupervisionIssued": _supervision_issued,
    "SupervisionClosed": _supervision_closed,
    "FindingReported": _finding,
    "FindingResolved": _finding,
    "FindingConfirmed": _finding,
    "ViolationRecorded": _violation,
    "ViolationRectified": _violation,
}
#: The site's history (``gongkai import``, and freshness's episodes decided from it): facts
#: about days before gongkai watched, recorded later. They speak for their business time.
HISTORY = frozenset({"PublicationImported", "ColumnWasStale"})


def as_of_day(env: Envelope[Any]) -> date:
    """The day from which an as-of view includes ``env``: the day it was recorded — what the
    log knew then — except history, which is known only by its own day."""
    if env.type in HISTORY:
        return local_date(env.business_time)
    return local_date(env.recorded_at)


#: The event types the fold reads; the projection filters nothing else out of interest.
RELEVANT = frozenset(_HANDLERS)

__all__ = ["HISTORY", "RELEVANT", "as_of_day", "evolve", "held_in", "holders_at", "short_id"]
