"""Masking what screening found: read models keep, and answers show, only masked text.

Screening (intake) records where it found personal data (resident ID numbers, mobiles, bank
cards) as ``screening.spans``: the field, the character offsets and a masked form. Pure, so a
domain module may use it (``gongkai.access`` re-exports it beside the read-scope checks).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gongkai.events.contracts.intake import MaskedSpan, PostRevised, PostSubmitted
from gongkai.events.envelope import Envelope

_SEPARATORS = frozenset(" -")


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
