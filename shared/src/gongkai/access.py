"""Reads scoped like writes: who may read a post's text, and what of it they see.

Only a unit's people act on its posts; only they, and the county office, read them. Everything
that carries a post's text (intake's post, review's state, form and queue, accountability's
trail, findings and violations) answers through ``may_read``: a person holding any live role in
the post's unit, or the ``office`` role anywhere. A refusal (``refusal``) names neither the
post's unit nor anything of its content, and it comes before every other check of the request,
so a wrong digest or a closed stage tells a stranger nothing either. Only an unknown id is
answered 404 first, as intake's ``GET /posts/{id}`` always has: post ids are derived from a
hash of the maker's command, so the answer reveals no more than that the id someone already
holds exists.

Screening (intake) records where it found personal data (resident ID numbers, mobiles, bank
cards) as ``screening.spans``: the field, the character offsets and a masked form. ``mask``
applies them; read models keep only masked text and every answer shows masked text, except to
the post's secrecy reviewer and principal leader while the chain awaits them (review decides
that, it alone knows the chain).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gongkai.directory import Principal
from gongkai.events.contracts.intake import MaskedSpan, PostRevised, PostSubmitted
from gongkai.events.envelope import Envelope
from gongkai.runtime.http import Problem

OFFICE = "office"
#: The separators screening accepts inside a grouped number (``110105 19491231 002X``).
_SEPARATORS = frozenset(" -")


def is_office(principal: Principal) -> bool:
    """The county office reads every unit's posts (it supervises them)."""
    return any(r == OFFICE for _, r in principal.roles)


def may_read(principal: Principal, unit: str) -> bool:
    """A person with any live role in ``unit``, or the county office."""
    return bool(principal.roles_in(unit)) or is_office(principal)


def readable_units(principal: Principal) -> frozenset[str] | None:
    """The units whose records this person may read; None for all of them (the office)."""
    if is_office(principal):
        return None
    return frozenset(principal.units())


def refusal(what: str, field: str | None = None) -> Problem:
    """403 for a read (or a write) of another unit's record: it names nothing of the record."""
    return Problem(
        403,
        "Not allowed",
        f"{what} is visible only to its unit's people and the county office",
        field=field,
    )


def require_read(principal: Principal, unit: str, what: str, field: str | None = None) -> None:
    if not may_read(principal, unit):
        raise refusal(what, field)


def mask(text: str, spans: Iterable[MaskedSpan], field: str) -> str:
    """``text`` (the value of ``field``) with every span screening found in it masked.

    A span is replaced character for character: each digit (or check letter) takes the next
    character of the span's masked form and separators stay, so the text keeps its length,
    the other spans' offsets stay valid and masking masked text changes nothing. A span that
    does not fit the text (it cannot happen with the spans of the same event) is starred out
    whole: masking fails closed.
    """
    chars: list[str] | None = None
    for s in spans:
        if s.field != field:
            continue
        if chars is None:
            chars = list(text)
        start, end = min(s.start, len(chars)), min(s.end, len(chars))
        region = chars[start:end]
        keep = [c in _SEPARATORS for c in region]
        if end != s.end or keep.count(False) != len(s.masked):
            chars[start:end] = ["*"] * (end - start)
            continue
        it = iter(s.masked)
        chars[start:end] = [c if k else next(it) for c, k in zip(region, keep, strict=True)]
    return text if chars is None else "".join(chars)


def masked_post(payload: PostSubmitted | PostRevised) -> PostSubmitted | PostRevised:
    """A post's content event with its screened spans masked in every field they were found in.

    The digest stays the digest of what was submitted: it names the content, it does not show it.
    """
    spans = payload.screening.spans
    if not spans:
        return payload
    update: dict[str, Any] = {
        "title": mask(payload.title, spans, "title"),
        "body": mask(payload.body, spans, "body"),
    }
    if payload.attachments:
        update["attachments"] = tuple(
            a.model_copy(update={"name": mask(a.name, spans, f"attachments.{i}.name")})
            for i, a in enumerate(payload.attachments)
        )
    if isinstance(payload, PostSubmitted) and payload.source:
        update["source"] = mask(payload.source, spans, "source")
    return payload.model_copy(update=update)


def masked_event(env: Envelope[Any]) -> Envelope[Any]:
    """``env`` as a read model may keep it: a post's content masked, every other event as is."""
    p = env.payload
    if isinstance(p, PostSubmitted | PostRevised) and p.screening.spans:
        return env.model_copy(update={"payload": masked_post(p)})
    return env


__all__ = [
    "OFFICE",
    "is_office",
    "mask",
    "masked_event",
    "masked_post",
    "may_read",
    "readable_units",
    "refusal",
    "require_read",
]
