"""Committed contract documents must match the code that generates them."""

from __future__ import annotations

from pathlib import Path

from gongkai.events import REGISTRY
from gongkai.events.markdown import render
from gongkai.events.schemas import schema_documents
from gongkai.runtime.asyncapi import asyncapi_documents

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


def test_events_md_tables_are_current() -> None:
    path = DOCS / "events.md"
    text = path.read_text()
    assert render(text) == text, "docs/events.md's tables are stale: run `make schemas` and commit"


def test_events_md_names_every_event_type_and_aggregate() -> None:
    text = (DOCS / "events.md").read_text()
    for name, cls in REGISTRY.types().items():
        assert f"| `{name}` |" in text, name
        assert f"| `{cls.aggregate_type}` |" in text, cls.aggregate_type
