"""The sign-off chain of Attachment 1 as a decider.

One review aggregate per post (its id is the post id). The state folds the post's own events
(what intake recorded: unit, kind, makers, current content version) together with the review
events and the unit's review policy, so every rule can be decided without I/O:

    decide(command, state) -> [events]      evolve(state, event) -> state      INITIAL

Rules (the notice, section 2 and Attachment 1):

* every post needs the principal leader's opinion (``leader``), which is always the last stage;
* the staff opinion (``staff``) comes first; it is required for normative documents,
  announcements and major decisions, and for every post of a unit whose policy says
  ``always``; otherwise a staff member *may* still give it while the leader has not signed;
* the secrecy review (``secrecy``) sits between them when screening flagged the content or
  the maker marked it uncertain; it is never part of a chain otherwise;
* only the post's unit's people sign it, and that is checked before anything else, so a
  refusal tells a stranger nothing of the post (not its digest, not its stage);
* a signature binds one content digest; a revision or withdrawal after any signature voids the
  open or approved chain, and the new version needs a new chain;
* ``disagree`` (with an opinion) ends the chain as rejected; the leader's ``agree`` approves it.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from gongkai.causality import Cause, caused_by
from gongkai.events import SYSTEM_ACTOR, Actor, Envelope, new_event
from gongkai.events.contracts import intake as post_ev
from gongkai.events.contracts import review as ev
from gongkai.events.contracts.review import Decision, Outcome, Signature, StaffStagePolicy, Stage
from gongkai.refusal import Refusal, RefusalKind

STAGE_ORDER: tuple[Stage, ...] = ("staff", "secrecy", "leader")
DECISIONS: tuple[Decision, ...] = ("agree", "disagree")
MAX_OPINION = 2000

STAGE_NAMES: dict[str, str] = {
    "staff": "staff opinion (工作机构或者人员审查意见)",
    "secrecy": "secrecy review (保密审查)",
    "leader": "principal leader opinion (主要领导意见)",
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Version(_Frozen):
    """One content version of the post, as intake recorded it."""

    version: int
    content_digest: str
    title: str
    author: str
    at: datetime
    event_id: str
    #: The recording event's correlation id: a signature of this version, or a void it
    #: causes, joins it (gongkai.causality). None in states saved before it was kept.
    correlation_id: str | None = None
    #: Where screening found personal data in this version (``gongkai.access.mask``).
    spans: tuple[post_ev.MaskedSpan, ...] = ()


class PostFacts(_Frozen):
    post_id: str
    unit: str
    column: str
    title: str
    origin: str
    source: str | None = None
    channel: str
    important_kind: str | None = None
    maker_unsure: bool = False
    needs_secrecy_review: bool = False
    content_digest: str
    content_version: int
    versions: tuple[Version, ...]
    withdrawn: bool = False
    withdrawn_reason: str | None = None
    withdrawn_event_id: str | None = None
    withdrawn_correlation_id: str | None = None

    @property
    def current(self) -> Version:
        return self.versions[-1]

    @property
    def makers(self) -> frozenset[str]:
        """Everyone who made a version of this post: none of them may approve it."""
        return frozenset(v.author for v in self.versions)

    def version(self, number: int | None, digest: str) -> Version | None:
        for v in reversed(self.versions):
            if (number is None or v.version == number) and v.content_digest == digest:
                return v
        return None


class Conclusion(_Frozen):
    outcome: Outcome
    at: datetime
    reason: str | None = None
    event_id: str


class Chain(_Frozen):
    number: int
    content_digest: str
    content_version: int | None = None
    signatures: tuple[Signature, ...] = ()
    conclusions: tuple[Conclusion, ...] = ()

    @property
    def outcome(self) -> Outcome | None:
        return self.conclusions[-1].outcome if self.conclusions else None

    def signature(self, stage: str) -> Signature | None:
        for s in self.signatures:
            if s.stage == stage:
                return s
        return None

    @property
    def signers(self) -> frozenset[str]:
        return frozenset(s.signer.person for s in self.signatures)


class ReviewState(_Frozen):
    post: PostFacts | None = None
    chains: tuple[Chain, ...] = ()
    staff_stage: StaffStagePolicy = "important_only"


INITIAL = ReviewState()


# ---- evolve ------------------------------------------------------------------------------


def _replace_chain(state: ReviewState, chain: Chain) -> ReviewState:
    if state.chains and state.chains[-1].number == chain.number:
        # The chain signed or concluded is nearly always the last one.
        return state.model_copy(update={"chains": (*state.chains[:-1], chain)})
    chains = [c for c in state.chains if c.number != chain.number]
    chains.append(chain)
    chains.sort(key=lambda c: c.number)
    return state.model_copy(update={"chains": tuple(chains)})


def _chain(state: ReviewState, number: int, digest: str, version: int | None) -> Chain:
    for c in state.chains:
        if c.number == number:
            return c
    return Chain(number=number, content_digest=digest, content_version=version)


def _version(envelope: Envelope[Any], p: post_ev.PostSubmitted | post_ev.PostRevised) -> Version:
    """The content version a submission or a revision records, by whom and when."""
    return Version(
        version=p.content_version,
        content_digest=p.content_digest,
        title=p.title,
        author=envelope.actor.person,
        at=envelope.recorded_at,
        event_id=envelope.event_id,
        correlation_id=envelope.correlation_id,
        spans=p.screening.spans,
    )


def _content(p: post_ev.PostSubmitted | post_ev.PostRevised) -> dict[str, Any]:
    """What a content version sets of the post's facts, the first one or a revision."""
    return {
        "title": p.title,
        "content_digest": p.content_digest,
        "content_version": p.content_version,
        "needs_secrecy_review": p.screening.needs_secrecy_review,
    }


def evolve(state: ReviewState, envelope: Envelope[Any]) -> ReviewState:
    """Fold one recorded event into the state; events of other kinds leave it unchanged."""
    p = envelope.payload
    if isinstance(p, post_ev.PostSubmitted):
        if state.post is not None:
            return state  # a post is submitted once; later versions arrive as PostRevised
        facts = PostFacts(
            post_id=envelope.aggregate_id,
            unit=p.unit,
            column=p.column,
            origin=p.origin,
            source=p.source,
            channel=p.channel,
            important_kind=p.important_kind,
            maker_unsure=p.maker_unsure,
            versions=(_version(envelope, p),),
            **_content(p),
        )
        return state.model_copy(update={"post": facts})
    if isinstance(p, post_ev.PostRevised):
        if state.post is None:
            return state
        versions = (*state.post.versions, _version(envelope, p))
        facts = state.post.model_copy(update={**_content(p), "versions": versions})
        return state.model_copy(update={"post": facts})
    if isinstance(p, post_ev.PostWithdrawn):
        if state.post is None:
            return state
        facts = state.post.model_copy(
            update={
                "withdrawn": True,
                "withdrawn_reason": p.reason,
                "withdrawn_event_id": envelope.event_id,
                "withdrawn_correlation_id": envelope.correlation_id,
            }
        )
        return state.model_copy(update={"post": facts})
    if isinstance(p, ev.ReviewPolicySet):
        return state.model_copy(update={"staff_stage": p.staff_stage})
    if isinstance(p, ev.ReviewSigned):
        chain = _chain(state, p.chain, p.content_digest, p.content_version)
        sig = Signature(
            stage=p.stage,
            decision=p.decision,
            opinion=p.opinion,
            signer=p.signer,
            content_digest=p.content_digest,
            signed_at=envelope.recorded_at,
            event_id=envelope.event_id,
        )
        return _replace_chain(
            state, chain.model_copy(update={"signatures": (*chain.signatures, sig)})
        )
    if isinstance(p, ev.ReviewConcluded):
        chain = _chain(state, p.chain, p.content_digest, p.content_version)
        done = Conclusion(
            outcome=p.outcome, at=envelope.recorded_at, reason=p.reason, event_id=envelope.event_id
        )
        return _replace_chain(
            state, chain.model_copy(update={"conclusions": (*chain.conclusions, done)})
        )
    return state


def fold(envelopes: Iterable[Envelope[Any]], state: ReviewState = INITIAL) -> ReviewState:
    for e in envelopes:
        state = evolve(state, e)
    return state


def held_role(
    grants: Iterable[Envelope[Any]], unit: str, role: str, at: datetime
) -> bool:
    """Did a person hold ``role`` in ``unit`` at the business time ``at``?

    ``grants``: the person's RoleGranted / RoleRevoked events, replayed by business time (a
    grant recorded late but dated earlier still counts; ties keep log order).
    """
    held = False
    for e in sorted(grants, key=lambda g: g.business_time):
        p = e.payload
        if e.business_time > at or (getattr(p, "unit", None), getattr(p, "role", None)) != (
            unit,
            role,
        ):
            continue
        held = isinstance(p, post_ev.RoleGranted)
    return held


def no_authority(
    state: ReviewState, signed: Envelope[Any], grants: Iterable[Envelope[Any]]
) -> str | None:
    """Why a recorded signature could not have been given, or None if it could.

    The decider refuses such a signature; one that is in the log anyway (review's key misused,
    a bug) is checked again against the directory as of its business time: the signer held the
    stage's role in the post's unit, and a leader did not make the post.
    """
    p = signed.payload
    post = state.post
    if post is None:
        return f"signature on post {p.post_id} before it was submitted"
    s = p.signer
    if s.unit != post.unit or s.role != p.stage:
        return f"{s.person} signed as {s.role} of {s.unit} on a post of {post.unit}"
    if not held_role(grants, post.unit, p.stage, signed.business_time):
        return (
            f"{s.person} did not hold the {p.stage} role in {post.unit} at "
            f"{signed.business_time.isoformat()}"
        )
    if p.stage == "leader" and s.person in post.makers:
        return f"{s.person} made post {post.post_id} and may not approve it"
    return None


def refusal(
    state: ReviewState,
    e: Envelope[Any],
    grants: Mapping[str, Sequence[Envelope[Any]]],
    tainted: Container[str] = frozenset(),
) -> str | None:
    """Why ``fold_checked`` leaves the recorded event ``e`` out of ``state``, or None to fold it.

    ``grants``: role histories by person (the signer's is the one a signature needs);
    ``tainted``: the command ids of this post's signatures already left out, whose conclusions
    go with them. One step of the fold, for a reader that folds one event at a time (the queue).
    """
    if isinstance(e.payload, ev.ReviewSigned):
        return no_authority(state, e, grants.get(e.payload.signer.person, ()))
    if isinstance(e.payload, ev.ReviewConcluded):
        why = _unfounded(state, e.payload)
        if why is None and e.command_id in tainted:
            return "concludes a chain on a signature without authority"
        return why
    return None


def fold_checked(
    envelopes: Iterable[Envelope[Any]], grants: Mapping[str, Sequence[Envelope[Any]]]
) -> tuple[ReviewState, list[tuple[Envelope[Any], str]]]:
    """Fold, leaving out every signature without authority and what its command concluded.

    Returns the state and the refused events with the reason (for the integrity alert).
    """
    state = INITIAL
    refused: list[tuple[Envelope[Any], str]] = []
    tainted: set[str] = set()
    for e in envelopes:
        why = refusal(state, e, grants, tainted)
        if why is not None:
            refused.append((e, why))
            if isinstance(e.payload, ev.ReviewSigned):
                tainted.add(e.command_id)
            continue
        state = evolve(state, e)
    return state, refused


def _unfounded(state: ReviewState, p: ev.ReviewConcluded) -> str | None:
    """An approval or rejection stands only on a believed signature of the same chain."""
    if p.outcome == "voided":
        return None
    chain = next((c for c in state.chains if c.number == p.chain), None)
    sigs = chain.signatures if chain is not None else ()
    if p.outcome == "approved" and not any(
        s.stage == "leader" and s.decision == "agree" and s.content_digest == p.content_digest
        for s in sigs
    ):
        return f"approves chain {p.chain} without a believed leader's agreement"
    if p.outcome == "rejected" and not any(s.decision == "disagree" for s in sigs):
        return f"rejects chain {p.chain} without a believed disagreement"
    return None


# ---- queries -----------------------------------------------------------------------------


def required_stages(post: PostFacts, policy: StaffStagePolicy) -> tuple[Stage, ...]:
    """The stages a chain must collect, in order; the leader is always last."""
    stages: list[Stage] = []
    if post.important_kind is not None or policy == "always":
        stages.append("staff")
    if post.needs_secrecy_review or post.maker_unsure:
        stages.append("secrecy")
    stages.append("leader")
    return tuple(stages)


def permitted_stages(post: PostFacts, policy: StaffStagePolicy) -> tuple[Stage, ...]:
    """Required stages plus the optional staff opinion."""
    required = required_stages(post, policy)
    return tuple(s for s in STAGE_ORDER if s in required or s == "staff")


def _bound_elsewhere(chain: Chain, post: PostFacts) -> bool:
    if chain.content_digest != post.content_digest:
        return True
    return chain.content_version is not None and chain.content_version != post.content_version


def pending_void(state: ReviewState) -> Chain | None:
    """The open or approved chain that a revision or withdrawal has made void, not yet voided."""
    post = state.post
    if post is None or not state.chains:
        return None
    last = state.chains[-1]
    if last.outcome in (None, "approved") and (post.withdrawn or _bound_elsewhere(last, post)):
        return last
    return None


def current_chain(state: ReviewState) -> Chain | None:
    """The chain the current content version is on (a fresh, unsigned one if it has none).

    None when nothing can be signed: no post, a withdrawn post, or a current version whose
    chain has concluded (approved, or rejected and awaiting a revision).
    """
    post = state.post
    if post is None or post.withdrawn:
        return None
    number = 1
    if state.chains:
        last = state.chains[-1]
        if pending_void(state) is None:
            if last.outcome is None:
                return last
            if last.outcome != "voided" and not _bound_elsewhere(last, post):
                return None
        number = last.number + 1
    return Chain(
        number=number, content_digest=post.content_digest, content_version=post.content_version
    )


def closed_reason(state: ReviewState, chain: Chain, stage: str) -> str | None:
    """Why ``stage`` cannot be signed on ``chain`` now, or None if it is open."""
    assert state.post is not None
    required = required_stages(state.post, state.staff_stage)
    if stage not in permitted_stages(state.post, state.staff_stage):
        return (
            f"the {STAGE_NAMES[stage]} is not part of this chain: the content was not flagged "
            "by screening and the maker did not mark it uncertain"
        )
    if chain.signature(stage) is not None:
        return f"the {STAGE_NAMES[stage]} of chain {chain.number} is already signed"
    idx = STAGE_ORDER.index(stage)  # type: ignore[arg-type]
    for later in STAGE_ORDER[idx + 1 :]:
        if chain.signature(later) is not None:
            return f"the {STAGE_NAMES[later]} has already been given; {stage} comes before it"
    for earlier in STAGE_ORDER[:idx]:
        if earlier in required and chain.signature(earlier) is None:
            return f"waiting for the {STAGE_NAMES[earlier]} first"
    return None


def awaiting(state: ReviewState) -> Stage | None:
    """The stage the current chain waits for next (the first required one unsigned)."""
    return queue_entry(state)[0]


def waiting_since(state: ReviewState) -> datetime | None:
    """When the awaited stage became open: the current version's time or the last signature."""
    return queue_entry(state)[2]


def queue_entry(state: ReviewState) -> tuple[Stage | None, int | None, datetime | None]:
    """What the work queue is asked by, worked out once: the stage the current chain waits
    for (``awaiting``), the chain's number, and since when it waits (``waiting_since``)."""
    post = state.post
    chain = current_chain(state)
    if post is None or chain is None:
        return None, None, None
    stage = next(
        (s for s in required_stages(post, state.staff_stage) if chain.signature(s) is None), None
    )
    if stage is None:
        return None, chain.number, None
    since = max([post.current.at, *(s.signed_at for s in chain.signatures)])
    return stage, chain.number, since


Status = Literal["in_review", "approved", "rejected", "withdrawn"]


def status(state: ReviewState) -> Status | None:
    if state.post is None:
        return None
    if state.post.withdrawn:
        return "withdrawn"
    if current_chain(state) is not None:
        return "in_review"
    last = state.chains[-1]
    return "approved" if last.outcome == "approved" else "rejected"


def may_sign(state: ReviewState, person_id: str, roles: frozenset[tuple[str, str]]) -> Stage | None:
    """The awaited stage if this person may sign it now (queue membership), else None."""
    stage = awaiting(state)
    chain = current_chain(state)
    post = state.post
    if stage is None or chain is None or post is None:
        return None
    if (post.unit, stage) not in roles or person_id in chain.signers:
        return None
    if stage == "leader" and person_id in post.makers:
        return None
    return stage


# ---- commands ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Meta:
    """Who issued a command, when, and the ids that make its events deterministic."""

    command_id: str
    at: datetime


@dataclass(frozen=True)
class Sign:
    """A signer gives a stage's opinion on the exact content (``content_digest``) they read."""

    post_id: str
    stage: str
    decision: str
    opinion: str | None
    content_digest: str
    signer_id: str
    signer_roles: frozenset[tuple[str, str]]
    meta: Meta


@dataclass(frozen=True)
class VoidStale:
    """Conclude as voided the chain a revision or withdrawal has overtaken (if any).

    It needs no command id: the void of chain N of a post always has the same event id.
    """

    post_id: str
    at: datetime


Command = Sign | VoidStale

_TITLES = {
    "not_found": "Unknown post",
    "invalid": "Invalid signature",
    "forbidden": "Not allowed to sign",
    "conflict": "Stage not open",
}


def refused(kind: RefusalKind, detail: str, field: str | None = None) -> Refusal:
    """A review refusal as the one refusal type, titled for the signer."""
    title = _TITLES[kind]
    if kind == "conflict" and field == "content_digest":
        title = "Not the current content"
    elif kind == "conflict" and field == "id":
        title = "Post withdrawn"
    return Refusal(kind, title, detail, field=field)


def void_command_id(post_id: str, chain: int) -> str:
    # One void per chain, whichever path records it: the reaction and a signature that
    # settles a pending void derive the same event id, so JetStream dedups a second one.
    return f"void:{post_id}:{chain}"


def _version_cause(v: Version) -> Cause | None:
    return Cause(v.event_id, v.correlation_id) if v.correlation_id is not None else None


def _void(state: ReviewState, at: datetime) -> list[Envelope[Any]]:
    chain = pending_void(state)
    post = state.post
    if chain is None or post is None:
        return []
    if post.withdrawn:
        # Caused by what overtook the chain, in its correlation: whichever path records the
        # void (the reaction, or a signature settling it) records the same event.
        reason = f"post withdrawn: {post.withdrawn_reason}"
        cause = (
            Cause(post.withdrawn_event_id, post.withdrawn_correlation_id)
            if post.withdrawn_event_id is not None and post.withdrawn_correlation_id is not None
            else None
        )
    else:
        reason = f"content revised to version {post.content_version}"
        cause = _version_cause(post.current)
    payload = ev.ReviewConcluded(
        post_id=post.post_id,
        chain=chain.number,
        outcome="voided",
        content_digest=chain.content_digest,
        content_version=chain.content_version,
        signatures=chain.signatures,
        reason=reason,
    )
    return [
        new_event(
            payload,
            aggregate_id=post.post_id,
            actor=SYSTEM_ACTOR,
            command_id=void_command_id(post.post_id, chain.number),
            recorded_at=at,
            **caused_by(cause),
        )
    ]


def _check_sign_input(cmd: Sign) -> str | None:
    if cmd.stage not in STAGE_ORDER:
        raise refused("invalid", f"stage must be one of {', '.join(STAGE_ORDER)}", "stage")
    if cmd.decision not in DECISIONS:
        raise refused("invalid", "decision must be agree or disagree", "decision")
    opinion = (cmd.opinion or "").strip() or None
    if cmd.decision == "disagree" and opinion is None:
        raise refused("invalid", "an opinion is required to disagree", "opinion")
    if opinion is not None and len(opinion) > MAX_OPINION:
        raise refused("invalid", f"an opinion has at most {MAX_OPINION} characters", "opinion")
    return opinion


def _decide_sign(cmd: Sign, state: ReviewState) -> list[Envelope[Any]]:
    post = state.post
    if post is None:
        raise refused("not_found", f"there is no post {cmd.post_id}", "id")
    if not any(u == post.unit for u, _ in cmd.signer_roles):
        # Before every other check: a stranger learns nothing of the post (not its unit, its
        # digest or the stage it is at) from why the signature was refused.
        raise refused(
            "forbidden",
            f"post {cmd.post_id} can be signed only by its unit's people with the stage's role",
            "id",
        )
    opinion = _check_sign_input(cmd)
    if post.withdrawn:
        raise refused("conflict", f"post {post.post_id} was withdrawn", "id")
    events = _void(state, cmd.meta.at)
    state = fold(events, state)
    if cmd.content_digest != post.content_digest:
        raise refused(
            "conflict",
            f"the current content of post {post.post_id} is version {post.content_version} "
            f"with digest {post.content_digest}; a signature approves only the current content",
            "content_digest",
        )
    chain = current_chain(state)
    if chain is None:
        last = state.chains[-1]
        if last.outcome == "approved":
            why = f"chain {last.number} already approved version {post.content_version}"
        else:
            why = (
                f"chain {last.number} rejected version {post.content_version}; "
                "the maker must revise the post, which starts a new chain"
            )
        raise refused("conflict", why, "stage")
    stage = cmd.stage
    if (post.unit, stage) not in cmd.signer_roles:
        elsewhere = sorted(u for u, r in cmd.signer_roles if r == stage)
        detail = f"signing the {stage} stage needs the {stage} role in unit {post.unit}"
        if elsewhere:
            detail += f"; you hold it in {', '.join(elsewhere)} only"
        raise refused("forbidden", detail, "stage")
    if cmd.signer_id in chain.signers:
        raise refused("forbidden", f"you already signed chain {chain.number} of this post", "stage")
    if stage == "leader" and cmd.signer_id in post.makers:
        raise refused(
            "forbidden",
            "the maker of a post may not give the leader's approval of it (no self-approval)",
            "stage",
        )
    why_closed = closed_reason(state, chain, stage)
    if why_closed is not None:
        raise refused("conflict", why_closed, "stage")

    signer = Actor(person=cmd.signer_id, role=stage, unit=post.unit)
    signed = new_event(
        ev.ReviewSigned(
            post_id=post.post_id,
            chain=chain.number,
            stage=stage,  # type: ignore[arg-type]
            decision=cmd.decision,  # type: ignore[arg-type]
            opinion=opinion,
            signer=signer,
            content_digest=post.content_digest,
            content_version=post.content_version,
        ),
        aggregate_id=post.post_id,
        actor=signer,
        command_id=cmd.meta.command_id,
        index=0,
        recorded_at=cmd.meta.at,
        # A signature answers the content version it approves: the post's whole life, from
        # submission through review to the site, is one correlation (gongkai.causality).
        **caused_by(_version_cause(post.current)),
    )
    events.append(signed)
    state = evolve(state, signed)
    outcome: Outcome | None = None
    if cmd.decision == "disagree":
        outcome = "rejected"
    elif stage == "leader":
        outcome = "approved"
    if outcome is not None:
        done = _chain(state, chain.number, post.content_digest, post.content_version)
        events.append(
            new_event(
                ev.ReviewConcluded(
                    post_id=post.post_id,
                    chain=chain.number,
                    outcome=outcome,
                    content_digest=post.content_digest,
                    content_version=post.content_version,
                    signatures=done.signatures,
                    reason=opinion if outcome == "rejected" else None,
                ),
                aggregate_id=post.post_id,
                actor=signer,
                command_id=cmd.meta.command_id,
                index=1,
                recorded_at=cmd.meta.at,
                **caused_by(signed),
            )
        )
    return events


def decide(command: Command, state: ReviewState) -> list[Envelope[Any]]:
    """The events a command records, or a Refusal. Pure: no clock, no I/O."""
    if isinstance(command, Sign):
        return _decide_sign(command, state)
    return _void(state, command.at)
