"""Attachment 1, the confidentiality review form, filled in from a post's review state.

The form is a view of recorded facts: every box comes from an event (the post's submission
and revision, the signatures, the conclusion) and names are looked up in the directory, which
is itself a projection of the log. Nothing on it is typed by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from gongkai.calendar import local_date
from gongkai.events.contracts.review import Signature
from gongkai.vocabulary import IMPORTANT_KINDS
from gongkai_review.domain.chain import (
    Chain,
    ReviewState,
    current_chain,
    required_stages,
)

ORIGINS = (("produced", "本机关、单位制发"), ("reprinted", "转载"))
CHANNELS = (("website", "网站公开"), ("on_request", "依申请公开"), ("other", "其他"))
#: Attachment 1's words for the important kinds, as every page and report names them.
KINDS = IMPORTANT_KINDS


@dataclass(frozen=True)
class Opinion:
    """One opinion box: the tick, the words, who signed and when."""

    stage: str
    required: bool
    decision: str | None = None
    opinion: str | None = None
    signer_id: str | None = None
    signer_name: str | None = None
    signed_on: date | None = None
    event_id: str | None = None


@dataclass(frozen=True)
class ReviewForm:
    """Attachment 1 for one post: the item's particulars and the opinion box of each stage."""

    post_id: str
    unit_code: str
    unit_name: str
    department: str
    serial: str | None
    form_date: date | None
    item: str
    column: str
    important_kind: str | None
    origin: str
    source: str | None
    channel: str
    staff: Opinion
    secrecy: Opinion | None
    leader: Opinion
    handler_id: str
    handler_name: str
    chain: int
    chains: int
    outcome: str | None
    outcome_reason: str | None
    content_digest: str
    content_version: int | None
    evidence: tuple[str, ...]


def _opinion(
    stage: str, required: bool, sig: Signature | None, names: Mapping[str, str]
) -> Opinion:
    if sig is None:
        return Opinion(stage=stage, required=required)
    return Opinion(
        stage=stage,
        required=required,
        decision=sig.decision,
        opinion=sig.opinion,
        signer_id=sig.signer.person,
        signer_name=names.get(sig.signer.person, sig.signer.person),
        signed_on=local_date(sig.signed_at),
        event_id=sig.event_id,
    )


def pick_chain(state: ReviewState, number: int | None) -> Chain | None:
    """The chain a form shows: the one asked for, else the latest (a fresh one if unsigned)."""
    if number is not None:
        return next((c for c in state.chains if c.number == number), None)
    if state.chains:
        return state.chains[-1]
    return current_chain(state)


def build_form(
    state: ReviewState,
    chain: Chain,
    *,
    names: Mapping[str, str],
    unit_name: str | None,
    serial: str | None,
) -> ReviewForm:
    post = state.post
    if post is None:
        raise ValueError("a review form needs a submitted post")
    version = post.version(chain.content_version, chain.content_digest) or post.current
    required = required_stages(post, state.staff_stage)
    secrecy_sig = chain.signature("secrecy")
    dates = [s.signed_at for s in chain.signatures] + [c.at for c in chain.conclusions]
    evidence = [version.event_id, *(s.event_id for s in chain.signatures)]
    evidence += [c.event_id for c in chain.conclusions]
    last = chain.conclusions[-1] if chain.conclusions else None
    unit_label = unit_name or post.unit
    return ReviewForm(
        post_id=post.post_id,
        unit_code=post.unit,
        unit_name=unit_label,
        # PostSubmitted names the maintaining unit only; the department column shows it too.
        department=unit_label,
        serial=serial,
        form_date=local_date(max(dates)) if dates else None,
        item=version.title,
        column=post.column,
        important_kind=post.important_kind,
        origin=post.origin,
        source=post.source,
        channel=post.channel,
        staff=_opinion("staff", "staff" in required, chain.signature("staff"), names),
        secrecy=(
            _opinion("secrecy", "secrecy" in required, secrecy_sig, names)
            if "secrecy" in required or secrecy_sig is not None
            else None
        ),
        leader=_opinion("leader", True, chain.signature("leader"), names),
        handler_id=version.author,
        handler_name=names.get(version.author, version.author),
        chain=chain.number,
        chains=max(len(state.chains), chain.number),
        outcome=last.outcome if last else None,
        outcome_reason=last.reason if last else None,
        content_digest=chain.content_digest,
        content_version=chain.content_version,
        evidence=tuple(evidence),
    )
