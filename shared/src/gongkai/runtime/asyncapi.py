"""Each service's AsyncAPI 3 document: faststream's, completed from the registry.

faststream describes what a service's broker publishes (its ``owns``) and the commands it
answers. Completed here, from the same declarations the code runs on:

* what the service **consumes** (``Service.consumes``: its projections, reactions and own log
  readers) as ``receive`` operations on each event type's channel;
* the correlation id where it is: the envelope's ``correlation_id`` field in the message body
  (faststream declares a ``correlation_id`` header, which no event carries); a command request
  carries none;
* every event's envelope schema pinned as in docs/schemas: ``type``, ``schema_version`` and
  ``aggregate_type`` constant, ``event_id`` a UUID.
"""

from __future__ import annotations

import inspect
import json
from typing import Any
from urllib.parse import quote

import yaml

from gongkai import subjects
from gongkai.events import REGISTRY, Envelope
from gongkai.events.envelope import EventPayload
from gongkai.events.schemas import BASE, schema_file
from gongkai.runtime.service import Service, ServiceContext, discover
from gongkai.runtime.settings import Settings

#: Where a subscriber finds the correlation id of an event (AsyncAPI runtime expression).
CORRELATION = {
    "description": "The envelope's correlation_id: shared by every event descended from one "
    "command (docs/events.md).",
    "location": "$message.payload#/correlation_id",
}


def _envelope_name(event_type: str) -> str:
    return f"Envelope[{event_type}]"


def _ref(section: str, name: str) -> str:
    return f"#/{section}/{quote(name)}"


def _pin(schema: dict[str, Any], cls: type[EventPayload]) -> None:
    props = schema["properties"]
    props["type"] = {"const": cls.event_type, "type": "string"}
    props["schema_version"] = {"const": cls.schema_version, "type": "integer"}
    props["aggregate_type"] = {"const": cls.aggregate_type, "type": "string"}
    props["event_id"] = {**props["event_id"], "format": "uuid"}
    schema["externalDocs"] = {
        "description": "The published JSON Schema 2020-12 of this version",
        "url": BASE + schema_file(cls.event_type, cls.schema_version),
    }


def _add_event_channel(doc: dict[str, Any], cls: type[EventPayload]) -> str:
    """The channel of one event type, added with its message and schemas if missing."""
    name = cls.event_type
    channels = doc.setdefault("channels", {})
    if name in channels:
        return name
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    envelope = Envelope[cls].model_json_schema(  # type: ignore[valid-type]
        ref_template="#/components/schemas/{model}"
    )
    for def_name, definition in envelope.pop("$defs", {}).items():
        schemas.setdefault(def_name, definition)
    schemas[_envelope_name(name)] = envelope
    message = f"{name}:Message"
    doc["components"].setdefault("messages", {})[message] = {
        "title": message,
        "payload": {"$ref": _ref("components/schemas", _envelope_name(name))},
    }
    address = subjects.type_filter(name, cls.aggregate_type)
    channels[name] = {
        "address": address,
        "bindings": {"nats": {"bindingVersion": "custom", "subject": address}},
        "description": inspect.cleandoc(cls.__doc__ or ""),
        "messages": {"Message": {"$ref": _ref("components/messages", message)}},
        "servers": [{"$ref": "#/servers/development"}],
    }
    return name


def complete(doc: dict[str, Any], service: Service) -> dict[str, Any]:
    """``doc`` (faststream's, parsed) with consumption, correlation ids and pinned schemas."""
    operations = doc.setdefault("operations", {})
    for event_type in service.consumes():
        cls = REGISTRY.payload_class(event_type)
        channel = _add_event_channel(doc, cls)
        operations[f"consume {event_type}"] = {
            "action": "receive",
            "channel": {"$ref": _ref("channels", channel)},
            "messages": [{"$ref": _ref(f"channels/{channel}/messages", "Message")}],
        }
    messages = doc.get("components", {}).get("messages", {})
    schemas = doc.get("components", {}).get("schemas", {})
    for name, message in messages.items():
        event_type = name.removesuffix(":Message")
        if name.endswith(":Message") and event_type in REGISTRY.types():
            message["correlationId"] = dict(CORRELATION)
            cls = REGISTRY.payload_class(event_type)
            _pin(schemas[_envelope_name(event_type)], cls)
        else:
            # A command request: the reply goes to its reply subject; no correlation id.
            message.pop("correlationId", None)
    return doc


def asyncapi_documents() -> dict[str, str]:
    """Each installed service's AsyncAPI document (YAML)."""
    from faststream.specification import AsyncAPI

    docs: dict[str, str] = {}
    ctx = ServiceContext(settings=Settings(), nats_url="nats://localhost:4222")
    for name, build in discover().items():
        svc = build(ctx)
        spec = AsyncAPI(
            svc.broker,
            title=f"gongkai {name}",
            version="0.1.0",
            description=svc.description or f"Events and commands of the gongkai {name} service.",
        )
        doc = complete(json.loads(spec.to_specification().to_json()), svc)
        # faststream's channel order varies between runs; sorted keys make the committed
        # document reproducible, so a stale copy can be detected.
        docs[name] = yaml.safe_dump(doc, sort_keys=True, allow_unicode=True, width=100)
    return docs
