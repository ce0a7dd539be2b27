"""Event contracts: envelope, canonical JSON, registry, upcasting, schemas."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gongkai.events import (
    HDR_TYPE,
    HDR_VERSION,
    REGISTRY,
    Actor,
    EventDecodeError,
    canonical_json,
    digest,
    new_event,
)
from gongkai.events.contracts.intake import PostSubmitted

ACTOR = Actor(person="p1", role="maker", unit="finance")
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def post(**over: object) -> PostSubmitted:
    fields: dict[str, object] = {
        "unit": "finance",
        "column": "normative_documents",
        "title": "关于印发《文安县财政专项资金管理办法》的通知",
        "body": "正文",
        "origin": "produced",
        "channel": "website",
        "important_kind": "normative_document",
        "information_date": date(2026, 2, 10),
        "content_digest": "b" * 64,
    }
    fields.update(over)
    return PostSubmitted(**fields)  # type: ignore[arg-type]


def test_envelope_round_trip_and_canonical_bytes() -> None:
    env = new_event(post(), aggregate_id="P1", actor=ACTOR, command_id="c1", recorded_at=T0)
    data = env.to_json()
    assert data == canonical_json(json.loads(data))  # sorted keys, no whitespace, UTF-8
    assert "关于印发".encode() in data  # not \\u-escaped
    back = REGISTRY.decode(data, {HDR_TYPE: "PostSubmitted", HDR_VERSION: "2"})
    assert back == env
    assert REGISTRY.decode(data) == env  # slow path (no headers) gives the same


def test_stored_times_in_another_zone_read_back_in_utc() -> None:
    """The reader's validator leaves out the model's UTC step (the log holds UTC): an event
    stored with another offset still reads back converted, equal to what the model gives."""
    env = new_event(post(), aggregate_id="P1", actor=ACTOR, command_id="c1", recorded_at=T0)
    raw = json.loads(env.to_json())
    raw["business_time"] = "2026-03-02T16:00:00+08:00"
    raw["recorded_at"] = "2026-03-02T03:30:00-04:30"
    data = canonical_json(raw)
    back = REGISTRY.decode(data, subject_type="PostSubmitted")
    model = REGISTRY.envelope_class("PostSubmitted").model_validate_json(data)
    assert back == model == env
    assert back.business_time.utcoffset() == timedelta(0) == back.recorded_at.utcoffset()
    assert back.business_time == T0 and back.recorded_at == T0
    # Stored in UTC (as gongkai writes): the same type, fields and fields set as the model's.
    plain = env.to_json()
    fast = REGISTRY.decode(plain, subject_type="PostSubmitted")
    full = REGISTRY.envelope_class("PostSubmitted").model_validate_json(plain)
    assert type(fast) is type(full) and fast == full == env
    assert fast.model_fields_set == full.model_fields_set


def test_a_stored_utc_time_is_told_by_its_zone_and_any_other_zone_by_its_offset() -> None:
    """The reader tells a UTC time by its zone's identity (pydantic keeps one zone for "Z" and
    "+00:00"), without asking its offset; a time in any other zone, or +00:00 written otherwise
    ("-00:00", the same instant), still reads back in UTC, equal to what the model gives."""
    from gongkai.events.envelope import _UTC_ZONE

    env = new_event(post(), aggregate_id="P1", actor=ACTOR, command_id="c1", recorded_at=T0)
    back = REGISTRY.decode(env.to_json(), subject_type="PostSubmitted")
    assert back.business_time.tzinfo is _UTC_ZONE is back.recorded_at.tzinfo
    raw = json.loads(env.to_json())
    for written in (
        "2026-03-02T08:00:01+00:00",
        "2026-03-02T08:00:01-00:00",
        "2026-03-02T16:00:01+08:00",
        "2026-03-02T03:30:01-04:30",
    ):
        raw["business_time"] = written
        data = canonical_json(raw)
        got = REGISTRY.decode(data, subject_type="PostSubmitted")
        model = REGISTRY.envelope_class("PostSubmitted").model_validate_json(data)
        assert got == model, written
        assert got.business_time.utcoffset() == timedelta(0), written
        assert got.business_time == T0 + timedelta(seconds=1), written


def test_every_type_reads_through_the_stored_validator_as_the_model_does() -> None:
    """Every registered type takes the reader's fast validator, ReviewSigned too (its Actor is
    used twice, so its schema keeps it among definitions): same event, same refusals."""
    from gongkai.events.contracts.review import ReviewSigned
    from gongkai.events.envelope import _stored_validator

    for name in REGISTRY.types():
        assert _stored_validator(REGISTRY.envelope_class(name)) is not None, name
    env = new_event(
        ReviewSigned(
            post_id="P1", chain=1, stage="leader", decision="agree", signer=ACTOR,
            content_digest="a" * 64,
        ),
        aggregate_id="P1",
        actor=ACTOR,
        command_id="g1",
        recorded_at=T0,
    )
    data = env.to_json()
    fast = REGISTRY.decode(data, subject_type="ReviewSigned")
    full = REGISTRY.envelope_class("ReviewSigned").model_validate_json(data)
    assert type(fast) is type(full) and fast == full == env
    assert fast.model_fields_set == full.model_fields_set
    raw = json.loads(data)
    raw["business_time"] = "2026-03-02T16:00:00+08:00"
    assert REGISTRY.decode(canonical_json(raw), subject_type="ReviewSigned") == env
    raw["payload"]["signer"]["person"] = ""
    with pytest.raises(EventDecodeError):
        REGISTRY.decode(canonical_json(raw), subject_type="ReviewSigned")


def test_event_ids_are_deterministic_per_command() -> None:
    a = new_event(post(), aggregate_id="P1", actor=ACTOR, command_id="c1", recorded_at=T0)
    b = new_event(post(), aggregate_id="P1", actor=ACTOR, command_id="c1", recorded_at=T0)
    c = new_event(post(), aggregate_id="P1", actor=ACTOR, command_id="c1", index=1, recorded_at=T0)
    assert a.event_id == b.event_id != c.event_id
    assert a.to_json() == b.to_json()


def test_digest_is_stable_across_key_order_and_timezones() -> None:
    assert digest({"b": 1, "a": [1, "x"]}) == digest({"a": [1, "x"], "b": 1})
    shanghai = timezone(timedelta(hours=8))
    a = new_event(post(), aggregate_id="P1", actor=ACTOR, command_id="c", recorded_at=T0)
    b = new_event(
        post(), aggregate_id="P1", actor=ACTOR, command_id="c", recorded_at=T0.astimezone(shanghai)
    )
    assert a.to_json() == b.to_json()  # stored in UTC whatever zone the clock used


def test_v1_event_in_the_log_reads_as_v2() -> None:
    v1 = {
        "event_id": "e1",
        "type": "PostSubmitted",
        "schema_version": 1,
        "aggregate_type": "post",
        "aggregate_id": "P1",
        "business_time": "2026-03-02T08:00:00Z",
        "recorded_at": "2026-03-02T08:00:00Z",
        "actor": {"person": "p1", "role": "maker", "unit": "finance"},
        "command_id": "c1",
        "correlation_id": "c1",
        "causation_id": None,
        "payload": {
            "unit": "finance",
            "column": "normative_documents",
            "title": "t",
            "body": "b",
            "origin": "produced",
            "channel": "website",
            "information_date": "2026-02-10",
            "sha256": "c" * 64,
        },
    }
    data = canonical_json(v1)
    env = REGISTRY.decode(data, {HDR_TYPE: "PostSubmitted", HDR_VERSION: "1"})
    assert env.schema_version == 2
    assert env.payload.content_digest == "c" * 64
    assert env.payload.screening.needs_secrecy_review is False
    assert env.payload.content_version == 1


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[1,2]",
        b"\xff\xfe",
        canonical_json({"type": "NoSuchEvent", "schema_version": 1, "payload": {}}),
        canonical_json({"type": "PostSubmitted", "schema_version": 3, "payload": {}}),
        canonical_json({"type": "PostSubmitted", "schema_version": 0, "payload": {}}),
        canonical_json({"type": "PostSubmitted", "schema_version": "2", "payload": {}}),
        canonical_json({"type": "PostSubmitted", "schema_version": 2, "payload": []}),
        canonical_json({"type": "PostSubmitted", "schema_version": 2, "payload": {"x": 1}}),
    ],
)
def test_bad_messages_raise_decode_error(data: bytes) -> None:
    with pytest.raises(EventDecodeError):
        REGISTRY.decode(data)


def test_headers_that_lie_are_caught() -> None:
    env = new_event(post(), aggregate_id="P1", actor=ACTOR, command_id="c1", recorded_at=T0)
    with pytest.raises(EventDecodeError):
        REGISTRY.decode(env.to_json(), {HDR_TYPE: "ReviewSigned", HDR_VERSION: "1"})


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        new_event(
            post(), aggregate_id="P1", actor=ACTOR, command_id="c", recorded_at=datetime(2026, 1, 1)
        )


def test_subject_unsafe_aggregate_ids_are_refused() -> None:
    for bad in ["a.b", "a b", "*", ">", "", "x" * 129]:
        with pytest.raises(ValueError):
            new_event(post(), aggregate_id=bad, actor=ACTOR, command_id="c", recorded_at=T0)


def test_every_registered_event_has_a_json_schema() -> None:
    from gongkai.events import Envelope

    for name, cls in REGISTRY.types().items():
        schema = Envelope[cls].model_json_schema()  # type: ignore[valid-type]
        assert "payload" in schema["properties"], name


@given(st.text(max_size=200), st.text(max_size=2000))
def test_any_text_round_trips_canonically(title: str, body: str) -> None:
    env = new_event(
        post(title=title, body=body), aggregate_id="P1", actor=ACTOR, command_id="c", recorded_at=T0
    )
    again = REGISTRY.decode(env.to_json())
    assert again == env
    assert again.to_json() == env.to_json()


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_the_decoder(data: bytes) -> None:
    with contextlib.suppress(EventDecodeError):
        REGISTRY.decode(data)
