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

from gongkai.directory import Principal
from gongkai.masking import mask, masked_event, masked_post
from gongkai.runtime.http import Problem

OFFICE = "office"
#: The separators screening accepts inside a grouped number (``110105 19491231 002X``).


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
