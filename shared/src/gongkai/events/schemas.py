"""The published JSON Schemas of the events (``docs/schemas``), generated from the registry.

One schema per event type and version (``PostSubmitted.v1.json``, ``PostSubmitted.v2.json``):
JSON Schema 2020-12, each pinning ``type``, ``schema_version`` and ``aggregate_type`` with
``const`` so that no event validates against another's schema, ``event_id`` a UUID and every
time a ``date-time``. ``envelope.json`` takes any event and dispatches on ``type`` to the
schemas of that type's versions; ``upcasts.json`` holds every upcast as field-level steps.

The schemas describe what gongkai writes; the Python readers are no stricter than they were
(an event id that is not a UUID is read all the same), since a log is never rewritten.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

from gongkai.events.envelope import REGISTRY, Envelope, EventPayload, Registry

DIALECT = "https://json-schema.org/draft/2020-12/schema"
BASE = "https://gongkai.example/schemas/"
ENVELOPE_FILE = "envelope.json"
UPCASTS_FILE = "upcasts.json"


def schema_file(event_type: str, version: int) -> str:
    """The file (and the last segment of the ``$id``) of one version's schema."""
    return f"{event_type}.v{version}.json"


def meaning(cls: type[EventPayload]) -> str:
    """What an event means: its docstring's first paragraph, on one line."""
    doc = inspect.cleandoc(cls.__doc__ or "")
    return " ".join(doc.split("\n\n", 1)[0].split())


def event_schema(cls: type[EventPayload], registry: Registry = REGISTRY) -> dict[str, Any]:
    """The schema of one version of one event type (``cls`` is that version's payload model)."""
    name, version = cls.event_type, cls.schema_version
    schema = Envelope[cls].model_json_schema()  # type: ignore[valid-type]
    props = schema["properties"]
    props["type"] = {"const": name, "type": "string"}
    props["schema_version"] = {"const": version, "type": "integer"}
    props["aggregate_type"] = {"const": cls.aggregate_type, "type": "string"}
    props["event_id"] = {
        **props["event_id"],
        "format": "uuid",
        "description": "UUID v5 of the command id and the event's index in the command",
    }
    aggregate = registry.aggregates().get(cls.aggregate_type)
    if aggregate is not None:
        props["aggregate_id"] = {**props["aggregate_id"], "description": aggregate.id_shape}
    current = registry.payload_class(name).schema_version
    described = meaning(cls)
    if version < current:
        described += (
            f" Version {version} of {current}: readers bring it to the current version with "
            f"the steps in {UPCASTS_FILE}."
        )
    return {
        "$schema": DIALECT,
        "$id": BASE + schema_file(name, version),
        **schema,
        "title": f"{name} v{version}",
        "description": described,
    }


def envelope_schema(registry: Registry = REGISTRY) -> dict[str, Any]:
    """Any gongkai event: ``type`` names a known type, then that type's schemas decide.

    ``if``/``then`` per type rather than one ``oneOf`` of every schema, so that a validator
    reports the errors of the event's own type, not of every other.
    """
    types = sorted(registry.types())
    dispatch = []
    for name in types:
        refs = [{"$ref": schema_file(name, v)} for v in registry.versions(name)]
        then = refs[0] if len(refs) == 1 else {"oneOf": refs}
        dispatch.append(
            {"if": {"properties": {"type": {"const": name}}, "required": ["type"]}, "then": then}
        )
    return {
        "$schema": DIALECT,
        "$id": BASE + ENVELOPE_FILE,
        "title": "gongkai event",
        "description": "Any event on gk.ev.>: dispatched by `type` to the schema of its "
        "version (<type>.v<schema_version>.json).",
        "type": "object",
        "required": ["type", "schema_version"],
        "properties": {
            "type": {"enum": types, "type": "string"},
            "schema_version": {"minimum": 1, "type": "integer"},
        },
        "allOf": dispatch,
    }


def upcasts_document(registry: Registry = REGISTRY) -> dict[str, Any]:
    """Every upcast as steps a consumer applies to ``payload``, oldest version first.

    An event of version v of type T is brought to the current version by applying
    ``upcasts[T][str(v)]``, then ``[str(v + 1)]`` ... and setting ``schema_version``.
    """
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(registry.types()):
        for version in registry.versions(name):
            if version == registry.payload_class(name).schema_version:
                continue
            steps = registry.upcast_steps(name, version)
            if steps is None:
                raise ValueError(
                    f"{name} v{version}: its upcaster is a function; declare it with "
                    "REGISTRY.upcast_fields so that it can be published"
                )
            out.setdefault(name, {})[str(version)] = {
                "to": version + 1,
                "steps": [s.describe() for s in steps],
            }
    return {
        "$id": BASE + UPCASTS_FILE,
        "description": "Apply each step, in order, to the payload of an event of the version "
        "named, then set schema_version to `to`; repeat until the current version. rename: "
        "the field `from` becomes `to`, value kept. default: add `field` with `value` if the "
        "payload lacks it. set: `field` becomes `value`.",
        "upcasts": out,
    }


def _text(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def schema_documents(registry: Registry = REGISTRY) -> dict[str, str]:
    """File name -> text of everything ``gongkai events schema`` writes to docs/schemas."""
    docs = {
        schema_file(name, version): _text(event_schema(cls, registry))
        for name in sorted(registry.types())
        for version, cls in registry.versions(name).items()
    }
    docs[ENVELOPE_FILE] = _text(envelope_schema(registry))
    docs[UPCASTS_FILE] = _text(upcasts_document(registry))
    return docs
