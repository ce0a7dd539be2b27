"""Committed contract documents must match the code that generates them."""

from __future__ import annotations

from pathlib import Path

from gongkai.cli import asyncapi_documents
from gongkai.events.schemas import schema_documents

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_asyncapi_documents_are_current() -> None:
    stale = []
    for name, text in asyncapi_documents().items():
        path = DOCS / "asyncapi" / f"{name}.yaml"
        if not path.exists() or path.read_text() != text:
            stale.append(name)
    assert not stale, f"docs/asyncapi is stale for {stale}: run `make asyncapi` and commit"


def test_json_schemas_are_current() -> None:
    want = schema_documents()
    have = {p.name: p.read_text() for p in (DOCS / "schemas").glob("*.json")}
    stale = sorted(n for n in want.keys() | have.keys() if want.get(n) != have.get(n))
    assert not stale, f"docs/schemas is stale for {stale}: run `make schemas` and commit"
