"""The published event schemas (docs/schemas) tell event types and versions apart.

Validated as a subscriber validates: the committed files, JSON Schema 2020-12, formats
asserted. A real event of each type passes its own schema and the envelope schema and fails
every other type's; a wrong type, version, event id or time fails; every version ever written
is published, and an old event brought up to date with the published upcast steps alone is
what the Python reader makes of it.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from gongkai.events import REGISTRY, Actor, Envelope, canonical_json, new_event
from gongkai.events.contracts.intake import RoleGranted
from gongkai.events.schemas import DIALECT, schema_file
from tests.property.strategies import envelopes
from tests.schemas import documents, errors, upcast_with_published_steps

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
OFFICE = Actor(person="office-1", role="office", unit="county-office")


def role_granted() -> dict[str, Any]:
    env = new_event(
        RoleGranted(person_id="finance-leader", unit="finance", role="leader"),
        aggregate_id="finance-leader",
        actor=OFFICE,
        command_id="grant-1",
        recorded_at=T0,
    )
    return dict(json.loads(env.to_json()))


#: A PostSubmitted as version 1 wrote it (the digest named ``sha256``, no screening).
POST_SUBMITTED_V1: dict[str, Any] = {
    "event_id": "0b0c4f5e-8a7e-5b7c-9d51-2f3c1b1a0e01",
    "type": "PostSubmitted",
    "schema_version": 1,
    "aggregate_type": "post",
    "aggregate_id": "post-P1",
    "business_time": "2026-03-02T08:00:00Z",
    "recorded_at": "2026-03-02T08:00:00Z",
    "actor": {"person": "finance-maker", "role": "maker", "unit": "finance"},
    "command_id": "c1",
    "correlation_id": "c1",
    "causation_id": None,
    "payload": {
        "unit": "finance",
        "column": "normative_documents",
        "title": "关于印发《文河县财政专项资金管理办法》的通知",
        "body": "各乡镇人民政府、县直各部门：……",
        "attachments": [],
        "origin": "produced",
        "source": None,
        "channel": "website",
        "important_kind": "normative_document",
        "maker_unsure": False,
        "information_date": "2026-02-10",
        "sha256": "c" * 64,
    },
}

TOKEN_ISSUED_V1: dict[str, Any] = {
    **POST_SUBMITTED_V1,
    "event_id": "5d7b0b1e-3f7e-5c1a-8a0b-7d6c5e4f3a21",
    "type": "TokenIssued",
    "aggregate_type": "person",
    "aggregate_id": "finance-maker",
    "actor": {"person": "gongkai", "role": "system", "unit": "system"},
    "payload": {"person_id": "finance-maker", "token_sha256": "d" * 64, "token_hint": "gk_abcd"},
}


def test_every_schema_is_2020_12_with_a_versioned_id() -> None:
    docs = documents()
    for name in REGISTRY.types():
        for version in REGISTRY.versions(name):
            file = schema_file(name, version)
            assert file in docs, f"{file} is not published"
            doc = docs[file]
            assert doc["$schema"] == DIALECT
            assert doc["$id"].endswith(f"/{name}.v{version}.json")
            props = doc["properties"]
            assert props["type"]["const"] == name
            assert props["schema_version"]["const"] == version
            assert props["aggregate_type"]["const"] == REGISTRY.payload_class(name).aggregate_type
            assert props["event_id"]["format"] == "uuid"
            assert props["recorded_at"]["format"] == props["business_time"]["format"]
            assert props["recorded_at"]["format"] == "date-time"
            Draft202012Validator.check_schema(doc)
    Draft202012Validator.check_schema(docs["envelope.json"])


def test_a_role_granted_passes_its_schema_and_fails_role_revoked() -> None:
    event = role_granted()
    assert errors("RoleGranted.v1.json", event) == []
    assert errors("envelope.json", event) == []
    assert errors("RoleRevoked.v1.json", event) == ["type: 'RoleRevoked' was expected"]


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("type", "Bogus", "is not one of"),
        ("schema_version", 99, "was expected"),
        ("schema_version", "1", "is not of type 'integer'"),
        ("aggregate_type", "unit", "'person' was expected"),
        ("event_id", "x", "is not a 'uuid'"),
        ("recorded_at", "2026-03-02 09:00", "is not a 'date-time'"),
        ("business_time", "yesterday", "is not a 'date-time'"),
        ("aggregate_id", "a.b", "does not match"),
    ],
)
def test_a_wrong_envelope_field_fails(field: str, value: Any, why: str) -> None:
    event = {**role_granted(), field: value}
    found = errors("envelope.json", event)
    assert any(why in e for e in found), found
    assert errors("RoleGranted.v1.json", event), "its own schema must refuse it too"


def test_a_payload_of_another_type_fails() -> None:
    event = role_granted()
    event["payload"] = {**event["payload"], "reason": "replaced"}
    assert any("Additional properties" in e for e in errors("envelope.json", event))


def test_a_v1_post_submitted_validates_against_v1_only() -> None:
    assert errors("PostSubmitted.v1.json", POST_SUBMITTED_V1) == []
    assert errors("envelope.json", POST_SUBMITTED_V1) == []
    assert errors("PostSubmitted.v2.json", POST_SUBMITTED_V1)
    # Python reads it too, as v2 (the published schema of v1 is not wider than the reader).
    assert REGISTRY.decode(canonical_json(POST_SUBMITTED_V1)).schema_version == 2


@pytest.mark.parametrize("old", [POST_SUBMITTED_V1, TOKEN_ISSUED_V1], ids=lambda e: e["type"])
def test_the_published_upcast_steps_do_what_the_reader_does(old: dict[str, Any]) -> None:
    name = old["type"]
    assert errors(f"{name}.v1.json", old) == []
    mine = upcast_with_published_steps(old)
    current = REGISTRY.payload_class(name).schema_version
    assert mine["schema_version"] == current
    assert errors(f"{name}.v{current}.json", mine) == []
    assert errors("envelope.json", mine) == []
    python = json.loads(REGISTRY.decode(canonical_json(old)).to_json())
    # The reader fills every default too; what the steps write must be what it reads.
    assert {k: python["payload"][k] for k in mine["payload"]} == mine["payload"]
    assert REGISTRY.decode(canonical_json(mine)).to_json() == REGISTRY.decode(
        canonical_json(old)
    ).to_json()


def test_every_version_before_the_current_has_its_upcast_published() -> None:
    upcasts = documents()["upcasts.json"]["upcasts"]
    for name, cls in REGISTRY.types().items():
        for version in range(1, cls.schema_version):
            assert upcasts[name][str(version)]["to"] == version + 1


@settings(max_examples=150, deadline=None)
@given(env=envelopes(), event_id=st.uuids())
def test_any_event_gongkai_writes_validates_and_only_against_its_own_type(
    env: Envelope[Any], event_id: uuid.UUID
) -> None:
    # new_event always writes a UUID; the strategy draws any text for the Python reader.
    event = json.loads(env.model_copy(update={"event_id": str(event_id)}).to_json())
    assert errors(schema_file(env.type, env.schema_version), event) == []
    assert errors("envelope.json", event) == []
    other = next(t for t in sorted(REGISTRY.types()) if t != env.type)
    assert errors(schema_file(other, REGISTRY.payload_class(other).schema_version), event)


def test_every_event_type_says_what_it_means_and_when_it_is_recorded() -> None:
    from gongkai.events.schemas import meaning

    silent = [
        name
        for name, cls in REGISTRY.types().items()
        if not meaning(cls) or not cls.emitted_when
        or cls.aggregate_type not in REGISTRY.aggregates()
    ]
    assert not silent, (
        f"{silent}: give each a docstring (what it means), emitted_when (when it is recorded) "
        "and its aggregate type a REGISTRY.aggregate declaration; then make schemas"
    )
