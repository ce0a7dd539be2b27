"""Validating events against the published schemas in docs/schemas, as a subscriber would.

The committed files are read (not the generator's output), with a JSON Schema 2020-12
validator that asserts formats: ``uuid`` and ``date`` by jsonschema itself, ``date-time``
through rfc3339-validator (without it jsonschema skips the check silently, so ``validator``
refuses to run without it).
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SCHEMAS = Path(__file__).resolve().parents[1] / "docs" / "schemas"
FORMATS = Draft202012Validator.FORMAT_CHECKER


@cache
def documents() -> dict[str, dict[str, Any]]:
    """File name -> parsed document, every file in docs/schemas."""
    return {p.name: json.loads(p.read_text()) for p in sorted(SCHEMAS.glob("*.json"))}


@cache
def _registry() -> Registry[Any]:
    resources = [
        (doc["$id"], Resource.from_contents(doc))
        for doc in documents().values()
        if "$schema" in doc
    ]
    return Registry().with_resources(resources)  # type: ignore[no-any-return]


@cache
def validator(file: str) -> Draft202012Validator:
    """The validator of one schema file, every other file resolvable by its ``$id``."""
    assert "date-time" in FORMATS.checkers, "install rfc3339-validator: date-time is unchecked"
    return Draft202012Validator(documents()[file], registry=_registry(), format_checker=FORMATS)


def errors(file: str, event: dict[str, Any]) -> list[str]:
    """Why ``event`` fails the schema in ``file`` (empty when it validates)."""
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
        for e in validator(file).iter_errors(event)
    ]


def upcast_with_published_steps(event: dict[str, Any]) -> dict[str, Any]:
    """``event`` brought to its type's current version by upcasts.json alone, no Python model:
    what a consumer in another language does with the published steps."""
    upcasts = documents()["upcasts.json"]["upcasts"].get(event["type"], {})
    out = copy.deepcopy(event)
    while str(out["schema_version"]) in upcasts:
        step_set = upcasts[str(out["schema_version"])]
        payload = out["payload"]
        for step in step_set["steps"]:
            if step["op"] == "rename":
                payload[step["to"]] = payload.pop(step["from"])
            elif step["op"] == "default":
                payload.setdefault(step["field"], copy.deepcopy(step["value"]))
            elif step["op"] == "set":
                payload[step["field"]] = copy.deepcopy(step["value"])
            else:
                raise AssertionError(f"unknown upcast step {step['op']!r}")
        out["schema_version"] = step_set["to"]
    return out
