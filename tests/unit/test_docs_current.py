"""Committed contract documents must match the code that generates them."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
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


def _rule_rows() -> list[list[str]]:
    text = (DOCS / "architecture.md").read_text()
    section = text.split("## Where the notice's rules live", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[1:]]


def test_architecture_maps_each_rule_to_one_pure_function_and_its_table() -> None:
    """docs/architecture.md's rule table: one function a row, defined under that name in a
    service's domain/ (which test_domain_is_pure keeps free of I/O), and the named tables
    exist in the test files named beside it."""
    rows = _rule_rows()
    assert len(rows) >= 20, "the rule table was not found"
    root = DOCS.parent
    bad = []
    for rule, function, tests in rows:
        names = re.findall(r"`([\w.]+)`", function)
        if len(names) != 1:
            bad.append(f"{rule[:40]}: {len(names)} functions, want one")
            continue
        module_name, _, attr = names[0].rpartition(".")
        obj = getattr(importlib.import_module(module_name), attr, None)
        if not inspect.isfunction(obj) or ".domain." not in obj.__module__ + ".":
            bad.append(f"{rule[:40]}: {names[0]} is no function of a domain module")
        for path, tables in re.findall(r"`(tests/[\w/]+\.py)`(?: \[([^\]]*)\])?", tests):
            if not (root / path).exists():
                bad.append(f"{rule[:40]}: no {path}")
                continue
            tree = ast.parse((root / path).read_text())
            defined = {t.id for n in tree.body if isinstance(n, ast.Assign | ast.AnnAssign)
                       for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
                       if isinstance(t, ast.Name)}
            defined |= {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
            for table in re.findall(r"`(\w+)`", tables):
                if table not in defined:
                    bad.append(f"{rule[:40]}: {path} has no table {table}")
    assert not bad, "docs/architecture.md's rule table is stale:\n" + "\n".join(bad)
