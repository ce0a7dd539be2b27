"""What of a post's review a reader sees: screened personal data masked, but for its reviewers.

Screening recorded where a post's content holds personal data (resident ID numbers, mobiles,
bank cards). Every answer and every read model shows that data masked (``gongkai.access.mask``),
except to the people the chain awaits for the secrecy review or the principal leader's opinion:
they decide whether it may go online, so they read the content as submitted, and only while the
chain waits for their signature. Whether one may read a post at all (its unit's people and the
county office) is checked before this, by the route.
"""

from __future__ import annotations

from gongkai.masking import mask
from gongkai_review.domain.chain import PostFacts, ReviewState, Version, may_sign

#: The stages whose signers read the unmasked content while the chain awaits them.
UNMASKED_STAGES = frozenset({"secrecy", "leader"})


def reads_unmasked(state: ReviewState, person_id: str, roles: frozenset[tuple[str, str]]) -> bool:
    """True while the chain awaits this person's secrecy review or leader's opinion."""
    return may_sign(state, person_id, roles) in UNMASKED_STAGES


def _masked_version(v: Version) -> Version:
    return v.model_copy(update={"title": mask(v.title, v.spans, "title")}) if v.spans else v


def masked(state: ReviewState) -> ReviewState:
    """The state with every screened span masked: what read models keep and most people see.

    Masking keeps lengths and offsets, so masking a masked state changes nothing.
    """
    post = state.post
    if post is None or not any(v.spans for v in post.versions):
        return state
    versions = tuple(_masked_version(v) for v in post.versions)
    facts: PostFacts = post.model_copy(
        update={
            "title": mask(post.title, post.current.spans, "title"),
            # Only a submission names a source; revisions keep it.
            "source": (
                mask(post.source, post.versions[0].spans, "source") if post.source else None
            ),
            "versions": versions,
        }
    )
    return state.model_copy(update={"post": facts})


def as_read_by(
    state: ReviewState, person_id: str, roles: frozenset[tuple[str, str]]
) -> ReviewState:
    """The state as this reader may see it."""
    return state if reads_unmasked(state, person_id, roles) else masked(state)


__all__ = ["UNMASKED_STAGES", "as_read_by", "masked", "reads_unmasked"]
