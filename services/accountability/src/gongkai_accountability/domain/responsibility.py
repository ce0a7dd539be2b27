"""谁制作、谁审核、谁公开、谁负责: who answers for an item, decided in one place.

Section 1.2 of the notice: "whoever produces it, reviews it, publishes it, is responsible for
it". Every violation accountability records names its people with ``responsible``; the read
model only looks up the facts it needs (who made the post, which principal leaders signed it,
who held which role in the unit at the time, who reported it online).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class Person:
    """One person named in a verdict, in the role they answer in, of the unit answering."""

    person: str
    role: str
    unit: str

    #: The read model's SQL keeps a person as an array (``codec``): a post names three.
    ARRAY: ClassVar[bool] = True


#: One Person for each (person, role, unit) met (``person_of``), as the read model keeps them.
_PEOPLE: dict[tuple[str, str, str], Person] = {}


def person_of(name: str, role: str, unit: str) -> Person:
    """``Person(name, role, unit)``, as the one equal object already made: the read model keeps
    a Person for every post's maker and everyone who answers for it, and they are few. Rows
    are never changed in place, so sharing is safe; what it saves is making (a frozen
    dataclass sets each field through ``object.__setattr__``) and freeing one for every
    publication's verdict, and the cyclic collector's walk over each one kept."""
    key = (name, role, unit)
    found = _PEOPLE.get(key)
    if found is None:
        if len(_PEOPLE) > 4096:
            _PEOPLE.clear()
        found = _PEOPLE[key] = Person(name, role, unit)
    return found


#: Who held ``role`` in the unit at a business time (None: as the directory stands now); a
#: lookup, so a rule reads the directory only when it needs to.
Holders = Callable[[str, datetime | None], Sequence[str]]


def responsible(
    unit: str,
    held: Holders,
    *,
    made_by: str | None = None,
    approved_by: Iterable[str] = (),
    when: datetime | None = None,
    kept: bool = False,
    published_by: Person | None = None,
) -> tuple[Person, ...]:
    """The people of ``unit`` who answer for an item, each once.

    * 谁制作: ``made_by``, the maker who submitted the post;
    * 谁审核: ``approved_by``, the principal leaders who signed it; where none did (nothing went
      through gongkai's review, or there is no post at all) the unit's principal leaders
      ``when`` it happened answer for what the unit put online (2.1: the principal leader
      checks every item);
    * ``kept``: a column left stale, not an item: the unit's makers ``when`` it lapsed answer
      beside its leaders, for keeping the column up to date (3);
    * 谁公开: ``published_by``, whoever reported it online, if a person of this unit (the
      county's CMS staff publishing for the unit do not answer for its content).
    """
    people: list[Person] = []
    if made_by is not None:
        people.append(person_of(made_by, "maker", unit))
    signed = sorted(approved_by)
    people += [person_of(p, "leader", unit) for p in (signed or held("leader", when))]
    if not kept and (published_by is None or published_by.unit != unit):
        # A maker and distinct leaders: nothing to repeat (spared on every publication).
        return tuple(people)
    if kept:
        people += [person_of(p, "maker", unit) for p in held("maker", when)]
    if published_by is not None and published_by.unit == unit:
        people.append(published_by)
    # Insertion-ordered and without repeats: a maker who also reported it online is named once.
    return tuple(dict.fromkeys(people))
