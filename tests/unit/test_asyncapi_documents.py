"""The committed AsyncAPI documents say what each service publishes and consumes, truly.

Read from docs/asyncapi as a subscriber reads them: every reference resolves; each service's
``send`` operations are the event types it owns and its ``receive`` operations the ones its
projections, reactions and log readers take (``Service.consumes``); the correlation id is
where events carry it, the ``correlation_id`` field of the body; event schemas are pinned.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import yaml

from gongkai import subjects
from gongkai.events import REGISTRY
from gongkai.runtime.service import Service, ServiceContext, discover
from gongkai.runtime.settings import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "asyncapi"
SERVICES = sorted(discover())


def service(name: str) -> Service:
    return discover()[name](ServiceContext(settings=Settings(), nats_url="nats://localhost:4222"))


def document(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((DOCS / f"{name}.yaml").read_text()))


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


def resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for token in ref[2:].split("/"):
        node = node[unquote(token).replace("~1", "/").replace("~0", "~")]
    return node


@pytest.mark.parametrize("name", SERVICES)
def test_every_reference_resolves(name: str) -> None:
    doc = document(name)
    assert doc["asyncapi"].startswith("3.")
    for ref in refs(doc):
        resolve(doc, ref)


@pytest.mark.parametrize("name", SERVICES)
def test_publishes_what_it_owns_and_consumes_what_it_reads(name: str) -> None:
    doc, svc = document(name), service(name)
    ops = doc["operations"]
    sent = {
        resolve(doc, op["channel"]["$ref"])["address"]
        for op in ops.values()
        if op["action"] == "send"
    }
    assert sent == {subjects.type_filter(c.event_type, c.aggregate_type) for c in svc.owns}
    received = {
        op_name.removeprefix("consume ")
        for op_name, op in ops.items()
        if op["action"] == "receive" and op_name.startswith("consume ")
    }
    assert received == set(svc.consumes())
    assert received, f"{name} consumes nothing?"
    for event_type in received:
        channel = resolve(doc, ops[f"consume {event_type}"]["channel"]["$ref"])
        cls = REGISTRY.payload_class(event_type)
        assert channel["address"] == subjects.type_filter(event_type, cls.aggregate_type)


def test_what_the_services_consume_is_what_their_code_reads() -> None:
    # Pinned by hand once: a change here is a change of the documented contract.
    assert "void-on-revision" in {r[0] for r in service("review").reactions}
    assert {"PostRevised", "PostWithdrawn"} <= set(service("review").consumes())
    assert {"ColumnHidden", "ColumnKept"} <= set(service("intake").consumes())
    assert {"PostPublished", "LeadershipDutiesChanged"} <= set(service("freshness").consumes())
    assert {"ColumnStale", "ReviewConcluded"} <= set(service("accountability").consumes())
    for name in SERVICES:
        unknown = set(service(name).consumes()) - set(REGISTRY.types())
        assert not unknown, f"{name} declares unknown event types {unknown}"


@pytest.mark.parametrize("name", SERVICES)
def test_the_correlation_id_is_in_the_body(name: str) -> None:
    doc = document(name)
    for msg_name, message in doc["components"]["messages"].items():
        event_type = msg_name.removesuffix(":Message")
        if event_type not in REGISTRY.types():
            assert "correlationId" not in message, msg_name  # a command request has none
            continue
        assert message["correlationId"]["location"] == "$message.payload#/correlation_id"
        schema = resolve(doc, message["payload"]["$ref"])
        assert "correlation_id" in schema["required"]
        assert schema["properties"]["type"]["const"] == event_type
        assert schema["properties"]["event_id"]["format"] == "uuid"
