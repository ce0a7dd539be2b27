"""Committed contract documents must match the code that generates them."""

from __future__ import annotations

import json
from pathlib import Path

from gongkai.cli import asyncapi_documents
from gongkai.events import REGISTRY, Envelope

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_asyncapi_documents_are_current() -> None:
    stale = []
    for name, text in asyncapi_documents().items():
        path = DOCS / "asyncapi" / f"{name}.yaml"
        if not path.exists() or path.read_text() != text:
            stale.append(name)
    assert not stale, f"docs/asyncapi is stale for {stale}: run `make asyncapi` and commit"


def test_json_schemas_are_current() -> None:
    stale = []
    for name, cls in REGISTRY.types().items():
        path = DOCS / "schemas" / f"{name}.json"
        want = Envelope[cls].model_json_schema()  # type: ignore[valid-type]
        if not path.exists():
            stale.append(name)
            continue
        have = json.loads(path.read_text())
        have.pop("$id", None)
        have.pop("title", None)
        want.pop("title", None)
        if have != want:
            stale.append(name)
    assert not stale, f"docs/schemas is stale for {stale}: run `make schemas` and commit"
