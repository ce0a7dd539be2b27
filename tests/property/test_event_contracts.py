"""Properties of the event contracts: round trip, canonical bytes, upcasting, hostile bytes.

The example-based tests in tests/unit/test_events.py pin single cases; these draw thousands of
envelopes of every registered type and arbitrary bytes. Whatever reaches the stream, decoding
either yields a valid envelope or raises EventDecodeError: consumers dead-letter exactly that
exception, so anything else would stall a projection on one message.
"""

from __future__ import annotations

import json
from datetime import timedelta, timezone
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from gongkai.events import (
    HDR_TYPE,
    HDR_VERSION,
    REGISTRY,
    Envelope,
    EventDecodeError,
    canonical_json,
    digest,
)
from gongkai.events.contracts.intake import PostSubmitted, Screening
from tests.property.strategies import EVENT_TYPES, JSON, TEXT, envelopes

# Enough draws to meet each of the ~25 event types a dozen times, in a few seconds in all.
FAST = settings(max_examples=300, deadline=None)
#: PostSubmitted alone: fewer draws cover it as well.
ONE_TYPE = settings(max_examples=100, deadline=None)


def decode_or_refuse(data: bytes, **kw: Any) -> Envelope[Any] | None:
    """Decode; None for a refusal. Any exception other than EventDecodeError fails the test."""
    try:
        return REGISTRY.decode(data, **kw)
    except EventDecodeError:
        return None


# ---- round trip and canonical bytes -------------------------------------------------------


@FAST
@given(env=envelopes())
def test_every_event_type_round_trips_through_its_bytes(env: Envelope[Any]) -> None:
    data = env.to_json()
    # The three ways a reader learns the type: subject token, header, or the body alone.
    by_subject = REGISTRY.decode(data, subject_type=env.type)
    by_header = REGISTRY.decode(
        data, {HDR_TYPE: env.type, HDR_VERSION: str(env.schema_version)}
    )
    by_body = REGISTRY.decode(data)
    assert by_subject == by_header == by_body == env
    assert by_subject.to_json() == data, "decode then encode must give the same bytes"
    assert by_subject.payload_digest() == env.payload_digest()


@FAST
@given(env=envelopes())
def test_envelope_bytes_are_canonical(env: Envelope[Any]) -> None:
    data = env.to_json()
    data.decode("utf-8")
    assert canonical_json(json.loads(data)) == data
    # Stored in UTC whatever zone the clock used.
    raw = json.loads(data)
    assert raw["business_time"].endswith("Z") and raw["recorded_at"].endswith("Z")


@FAST
@given(env=envelopes(), zone=st.sampled_from([timezone(timedelta(hours=h)) for h in (-11, 8, 14)]))
def test_the_same_instant_in_any_zone_gives_the_same_bytes(
    env: Envelope[Any], zone: timezone
) -> None:
    shifted = env.model_copy(
        update={
            "business_time": env.business_time.astimezone(zone),
            "recorded_at": env.recorded_at.astimezone(zone),
        }
    )
    # model_copy skips validation: re-validate as a reader would.
    again = type(env).model_validate(shifted.model_dump())
    assert again.to_json() == env.to_json()


@settings(max_examples=500, deadline=None)
@given(value=JSON)
def test_canonical_json_is_stable_under_key_order_and_reparsing(value: Any) -> None:
    data = canonical_json(value)
    assert canonical_json(json.loads(data)) == data

    def reverse_keys(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: reverse_keys(v[k]) for k in reversed(list(v))}
        if isinstance(v, list):
            return [reverse_keys(x) for x in v]
        return v

    assert canonical_json(reverse_keys(value)) == data
    assert digest(reverse_keys(value)) == digest(value)
    data.decode("utf-8")


FLOATLESS = st.recursive(
    st.none() | st.booleans() | st.integers() | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=500, deadline=None)
@given(value=FLOATLESS)
@example(value={"b": "\u00e9\u4e2d\x00\x1f\"\\/\u2028", "a": [1, -(2**63), 2**64 - 1]})
@example(value={"big": 2**70, "nested": [{"z": 1, "y": None}]})
def test_the_floatless_way_writes_the_same_bytes(value: Any) -> None:
    """orjson's way (``floatless``) writes what ``json`` writes, or hands over to it."""
    assert canonical_json(value, floatless=True) == canonical_json(value)
    assert digest(value, floatless=True) == digest(value)


def test_the_floatless_way_refuses_what_json_refuses() -> None:
    """A lone surrogate fails as it fails with ``json`` (UTF-8 cannot write it); a key that is
    not a string and a datetime are ``json``'s to decide."""
    from datetime import UTC, datetime

    import pytest

    for value in ({"t": "\ud800"}, ["x\udfff"]):
        with pytest.raises(UnicodeEncodeError):
            canonical_json(value)
        with pytest.raises(UnicodeEncodeError):
            canonical_json(value, floatless=True)
    assert canonical_json({2: "b", 1: "a"}, floatless=True) == b'{"1":"a","2":"b"}'
    with pytest.raises(TypeError):
        canonical_json({"at": datetime(2026, 1, 1, tzinfo=UTC)}, floatless=True)


# ---- upcasting ----------------------------------------------------------------------------


def as_v1(env: Envelope[Any]) -> bytes:
    """The bytes a v1 writer would have stored for this PostSubmitted (before screening)."""
    raw = json.loads(env.to_json())
    payload = raw["payload"]
    payload["sha256"] = payload.pop("content_digest")
    del payload["screening"], payload["content_version"]
    raw["schema_version"] = 1
    return canonical_json(raw)


@ONE_TYPE
@given(env=envelopes("PostSubmitted"))
def test_v1_post_submitted_reads_as_v2_with_defaults(env: Envelope[Any]) -> None:
    old = as_v1(env)
    expected = env.model_copy(
        update={"payload": env.payload.model_copy(update={"screening": Screening(),
                                                          "content_version": 1})}
    )
    for kw in ({"subject_type": "PostSubmitted"}, {}):
        got = REGISTRY.decode(old, **kw)
        assert isinstance(got.payload, PostSubmitted)
        assert got.schema_version == PostSubmitted.schema_version
        assert got.to_json() == expected.to_json()
    # Upcasting is a read-side view: the stored bytes are untouched (they are a new object).
    assert json.loads(old)["schema_version"] == 1


@ONE_TYPE
@given(
    env=envelopes("PostSubmitted"),
    drop=st.sampled_from(["sha256", "unit", "information_date", "origin"]),
    junk=JSON,
)
def test_a_malformed_old_version_is_refused_not_crashed(
    env: Envelope[Any], drop: str, junk: Any
) -> None:
    # The upcaster runs on whatever an old writer left: a required field missing (the digest
    # it renames, say) must be a refusal, not a KeyError that stalls a consumer.
    raw = json.loads(as_v1(env))
    del raw["payload"][drop]
    for kw in ({}, {"subject_type": "PostSubmitted"}):
        assert decode_or_refuse(canonical_json(raw), **kw) is None
    raw["payload"]["sha256"] = junk
    decode_or_refuse(canonical_json(raw))


def test_an_empty_v1_payload_is_refused() -> None:
    data = canonical_json({"type": "PostSubmitted", "schema_version": 1, "payload": {}})
    assert decode_or_refuse(data) is None
    assert decode_or_refuse(data, subject_type="PostSubmitted") is None


# ---- hostile input ------------------------------------------------------------------------

SUBJECT_TYPES = st.none() | st.sampled_from(EVENT_TYPES) | TEXT


@settings(max_examples=1000, deadline=None)
@given(data=st.binary(max_size=300), subject_type=SUBJECT_TYPES)
@example(data=b"[" * 100_000 + b"]" * 100_000, subject_type=None)  # nested too deep
@example(data=b"[" * 100_000 + b"]" * 100_000, subject_type="PostSubmitted")
@example(data=b"\xff\xfe{}", subject_type="PostSubmitted")
@example(data=b"1e99999", subject_type=None)
@example(data=b'"\\ud800"', subject_type=None)
def test_decoding_arbitrary_bytes_never_raises_anything_else(
    data: bytes, subject_type: str | None
) -> None:
    decode_or_refuse(data, subject_type=subject_type)


@settings(max_examples=500, deadline=None)
@given(value=JSON, subject_type=SUBJECT_TYPES)
def test_decoding_arbitrary_json_never_raises_anything_else(
    value: Any, subject_type: str | None
) -> None:
    decode_or_refuse(canonical_json(value), subject_type=subject_type)


MUTATIONS = st.sampled_from(["replace", "delete", "add", "payload_replace", "payload_delete"])


@settings(max_examples=500, deadline=None)
@given(
    env=envelopes(),
    mutation=MUTATIONS,
    key=TEXT,
    junk=JSON | st.sampled_from(["0001-01-01T00:00:00+08:00", "9999-12-31T23:00:00-08:00"]),
    pick=st.integers(min_value=0),
    subject_type=st.none() | st.sampled_from(EVENT_TYPES),
)
def test_a_valid_event_with_one_field_broken_is_decoded_or_refused(
    env: Envelope[Any],
    mutation: str,
    key: str,
    junk: Any,
    pick: int,
    subject_type: str | None,
) -> None:
    """Near-misses reach the validators and the upcasters, where arbitrary bytes rarely do."""
    raw = json.loads(env.to_json())
    target = raw if not mutation.startswith("payload") else raw["payload"]
    keys = sorted(target)
    name = keys[pick % len(keys)] if keys else key
    if mutation.endswith("replace"):
        target[name] = junk
    elif mutation.endswith("delete"):
        target.pop(name, None)
    else:
        target[key] = junk
    got = decode_or_refuse(canonical_json(raw), subject_type=subject_type)
    if got is not None:
        # Whatever is accepted is a valid event that encodes canonically.
        assert got.business_time.utcoffset() == timedelta(0)
        assert REGISTRY.decode(got.to_json()) == got


def test_every_registered_payload_is_written_by_the_fast_encoder_and_a_float_is_not() -> None:
    """orjson writes ``1e-05`` as ``0.00001``: a payload with a number keeps ``json``."""
    from pydantic import BaseModel

    from gongkai.events.envelope import _orjson_exact

    assert all(_orjson_exact(cls) for cls in REGISTRY.types().values())

    class Scored(BaseModel):
        score: float

    assert not _orjson_exact(Scored)
