"""Hypothesis strategies for gongkai's event contracts, derived from the pydantic models.

Deriving them from the models (annotations and Field constraints) rather than writing one per
event type means a new event type or field is covered the day it is added.
"""

from __future__ import annotations

import types
import typing
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, Literal, Union, get_args, get_origin

from hypothesis import strategies as st
from pydantic import BaseModel

from gongkai.events import REGISTRY, Actor, Envelope, EventPayload
from gongkai.identifiers import TOKEN_RE

#: UTC and a few other offsets: canonical JSON must store the same instant the same way.
ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30))]
)
#: Years kept away from 1 and 9999 so that converting to UTC cannot leave datetime's range;
#: the edges themselves are exercised on purpose in test_event_contracts.
DATETIMES = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=ZONES
)
DATES = st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 1, 1))
TOKENS = st.from_regex(TOKEN_RE, fullmatch=True)
HEX64 = r"^[0-9a-f]{64}$"
SHA256 = st.binary(min_size=32, max_size=32).map(bytes.hex)
#: Any text a person could type, CJK and emoji included (lone surrogates cannot be UTF-8).
TEXT = st.text(max_size=40)

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


#: Field name -> strategy: draws those fields from a few values, so that events of a list
#: refer to the same units, columns and posts and meet in a fold.
Pools = dict[str, st.SearchStrategy[Any]]


def _constraints(metadata: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for m in metadata:
        for name in ("min_length", "max_length", "ge", "pattern"):
            value = getattr(m, name, None)
            if value is not None:
                out[name] = value
    return out


def for_annotation(
    annotation: Any, metadata: list[Any] | None = None, pools: Pools | None = None
) -> st.SearchStrategy[Any]:
    """A strategy of valid values for one model field (annotation plus Field constraints)."""
    c = _constraints(metadata or [])
    origin = get_origin(annotation)
    if origin is Literal:
        return st.sampled_from(get_args(annotation))
    if origin in (Union, types.UnionType):
        return st.one_of(*(for_annotation(a, metadata) for a in get_args(annotation)))
    if origin is tuple:
        item = get_args(annotation)[0]
        return st.lists(
            for_annotation(item), min_size=c.get("min_length", 0), max_size=3
        ).map(tuple)
    if annotation is type(None):
        return st.none()
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return model_values(annotation, pools)
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        return st.integers(min_value=c.get("ge", -(2**31)), max_value=2**31)
    if annotation is datetime:
        return DATETIMES
    if annotation is date:
        return DATES
    if annotation is str:
        if c.get("pattern") == HEX64:
            return SHA256  # much cheaper to draw than the regex
        if "pattern" in c:
            return st.from_regex(c["pattern"], fullmatch=True)
        lo = c.get("min_length", 0)
        return st.text(min_size=lo, max_size=max(lo, min(c.get("max_length", 40), 40)))
    raise NotImplementedError(f"no strategy for {annotation!r}")  # a new kind of field


def model_values(cls: type[BaseModel], pools: Pools | None = None) -> st.SearchStrategy[Any]:
    """Valid instances of a pydantic model, every field drawn (defaults too)."""
    hints = typing.get_type_hints(cls)
    pools = pools or {}
    fields = {
        name: pools[name]
        if name in pools
        else for_annotation(hints.get(name, f.annotation), list(f.metadata), pools)
        for name, f in cls.model_fields.items()
    }
    return st.fixed_dictionaries(fields).map(lambda kw: cls(**kw))


ACTORS = st.builds(
    Actor,
    person=st.text(min_size=1, max_size=20),
    role=st.text(min_size=1, max_size=20),
    unit=st.text(min_size=1, max_size=20),
)
EVENT_TYPES = sorted(REGISTRY.types())


@st.composite
def envelopes(
    draw: st.DrawFn, event_type: str | None = None, pools: Pools | None = None
) -> Envelope[Any]:
    """A valid envelope of any registered type (or of ``event_type``).

    With ``pools``, fields of those names (and ``aggregate_id``) come from the pools.
    """
    name = event_type or draw(st.sampled_from(EVENT_TYPES))
    cls: type[EventPayload] = REGISTRY.payload_class(name)
    pools = pools or {}
    return REGISTRY.envelope_class(name)(
        event_id=draw(TEXT),
        type=name,
        schema_version=cls.schema_version,
        aggregate_type=cls.aggregate_type,
        aggregate_id=draw(pools.get("aggregate_id", TOKENS)),
        business_time=draw(DATETIMES),
        recorded_at=draw(DATETIMES),
        actor=draw(ACTORS),
        command_id=draw(TEXT),
        correlation_id=draw(TEXT),
        causation_id=draw(st.none() | TEXT),
        payload=draw(model_values(cls, pools)),
    )
