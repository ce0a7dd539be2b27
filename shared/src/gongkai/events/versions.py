"""Upcasts as data: the field-level steps that turn one payload version into the next.

An upcaster written as steps does two jobs from one declaration: the registry applies the
steps to old payloads on read, and the schema export publishes the same steps
(``docs/schemas/upcasts.json`` and the table in docs/events.md) so a subscriber in any language
can bring an old event up to date without reading Python. Each step reads the payload as a
JSON object and applies in the order declared.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class Rename:
    """The field ``old`` is called ``new`` from the next version on (the value is kept)."""

    old: str
    new: str
    why: str = ""

    def apply(self, payload: dict[str, Any]) -> None:
        # A v1 payload always has the old field (its schema requires it); a missing one is a
        # malformed event, which the registry turns into EventDecodeError.
        payload[self.new] = payload.pop(self.old)

    def describe(self) -> dict[str, Any]:
        return {"op": "rename", "from": self.old, "to": self.new, "why": self.why}

    def sentence(self) -> str:
        return f"rename `{self.old}` to `{self.new}`"


@dataclass(frozen=True)
class _FieldValue:
    """A step that gives ``field`` the value ``value``; each kind says when (``apply``)."""

    op: ClassVar[str]
    field: str
    value: Any
    why: str = ""

    def describe(self) -> dict[str, Any]:
        return {"op": self.op, "field": self.field, "value": self.value, "why": self.why}


@dataclass(frozen=True)
class Default(_FieldValue):
    """Add ``field`` with ``value`` when the old payload does not have it."""

    op = "default"

    def apply(self, payload: dict[str, Any]) -> None:
        if self.field not in payload:
            payload[self.field] = copy.deepcopy(self.value)

    def sentence(self) -> str:
        return f"if `{self.field}` is absent, add it as `{_json(self.value)}`"


@dataclass(frozen=True)
class Set(_FieldValue):
    """Set ``field`` to ``value`` whatever the old payload holds."""

    op = "set"

    def apply(self, payload: dict[str, Any]) -> None:
        payload[self.field] = copy.deepcopy(self.value)

    def sentence(self) -> str:
        return f"set `{self.field}` to `{_json(self.value)}`"


Step = Rename | Default | Set


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))


def apply_steps(steps: Sequence[Step], payload: dict[str, Any]) -> dict[str, Any]:
    """A new payload: ``payload`` with every step applied in order (the input is not changed)."""
    out = dict(payload)
    for step in steps:
        step.apply(out)
    return out
