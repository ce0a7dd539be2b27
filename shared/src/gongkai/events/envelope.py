"""The event envelope, canonical JSON and the event-type registry.

Every fact gongkai records is one ``Envelope[P]``: the envelope fields say who did what to which
aggregate and when; ``P`` is the event's own payload model. Payload classes register themselves
with a type name and a schema version; older versions found in the log are upcast on read by
registered upcasters and the stored bytes are never rewritten.
"""

from __future__ import annotations

import functools
import hashlib
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Generic, TypeVar

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import SchemaValidator

from gongkai.events.versions import Step, apply_steps
from gongkai.identifiers import ID_RULE, SUBJECT_SAFE_ID

#: An identifier in a request body: pydantic refuses anything but a full match (422).
Id = Annotated[str, Field(pattern=SUBJECT_SAFE_ID, description=ID_RULE)]
# Namespace for deterministic event ids: uuid5(command id / index) makes a retried command
# produce the same event ids, so JetStream's Nats-Msg-Id dedup catches the retry.
EVENT_ID_NAMESPACE = uuid.UUID("7d0c6d0e-1f7a-4d43-9b7e-6b61676f6e67")


class EventDecodeError(ValueError):
    """A message on the stream is not a valid gongkai event (bad JSON, unknown type/version)."""


def utc(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        raise ValueError("timestamps must carry a timezone")
    return dt.astimezone(UTC)


def canonical_json(obj: Any, *, floatless: bool = False) -> bytes:
    """Sorted keys, UTF-8, no whitespace: the same value always gives the same bytes.

    ``floatless``: the caller knows ``obj`` holds only strings, integers, booleans, null, lists
    and objects with string keys — no float, where orjson's digits differ from ``json``'s
    (``_orjson_exact``). orjson then writes the same bytes, about fifteen times faster (6.6 ->
    0.4 µs for a post's content); whatever it refuses (a lone surrogate, an integer beyond 64
    bits, a key that is not a string) takes ``json``'s way, which decides as before.
    """
    if floatless:
        try:
            return orjson.dumps(obj, option=_FLOATLESS)
        except orjson.JSONEncodeError:
            pass
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


#: What ``json`` refuses without a ``default`` (a datetime, a dataclass, a subclass of a JSON
#: type) orjson hands on, so it is refused too and ``json`` has the last word.
_FLOATLESS = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


_EXACT: dict[type, bool] = {}


def _orjson_exact(payload: type[BaseModel]) -> bool:
    """Whether orjson writes this payload's events byte for byte as ``canonical_json`` does.

    It does for strings, integers, booleans, null, lists and objects with string keys (sorted
    keys, no whitespace, UTF-8 unescaped, control characters as ``\\u00XX``); it does not for
    floats (``1e-05`` becomes ``0.00001``). A payload whose schema has no number and no open
    (untyped) field takes the fast path — an event costs ~10 µs less to write; any other
    keeps ``json``. ``test_canonical_json`` holds the two equal on every registered type.
    """
    exact = _EXACT.get(payload)
    if exact is None:
        schema = json.dumps(payload.model_json_schema())
        exact = '"number"' not in schema and "{}" not in schema and ": true" not in schema
        _EXACT[payload] = exact
    return exact


def digest(obj: Any, *, floatless: bool = False) -> str:
    return hashlib.sha256(canonical_json(obj, floatless=floatless)).hexdigest()


def payload_json(payload: EventPayload) -> bytes:
    """The payload's canonical JSON, as its event's ``to_json`` writes it (orjson where exact)."""
    return canonical_json(payload.model_dump(mode="json"), floatless=_orjson_exact(type(payload)))


class Actor(BaseModel):
    """Who caused an event: the person, the role they acted in, and their unit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    person: str = Field(min_length=1, max_length=128)
    role: str = Field(min_length=1, max_length=64)
    unit: str = Field(min_length=1, max_length=128)


SYSTEM_ACTOR = Actor(person="gongkai", role="system", unit="system")


class EventPayload(BaseModel):
    """Base of every event payload. Subclasses set the three class variables and register."""

    # Built on first use, not at import: a process (a CLI command, a service) decodes a few of
    # the ~60 types, and building every payload's and envelope's validator at import cost
    # each process start about 0.1 s.
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1
    aggregate_type: ClassVar[str]
    #: When the deciding service records it: the semantics table of docs/events.md says it,
    #: beside the docstring's first paragraph (what the event means).
    emitted_when: ClassVar[str] = ""


P = TypeVar("P", bound=EventPayload)


class Envelope(BaseModel, Generic[P]):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    event_id: str
    type: str
    schema_version: int = Field(ge=1)
    aggregate_type: str
    # Checked by the validator core, not a Python validator: every event read pays for it.
    aggregate_id: str = Field(pattern=SUBJECT_SAFE_ID)
    business_time: AwareDatetime
    recorded_at: AwareDatetime
    actor: Actor
    command_id: str
    correlation_id: str
    causation_id: str | None = None
    payload: P

    @model_validator(mode="after")
    def _utc(self) -> Envelope[P]:
        # Times are kept in UTC. One model-level check instead of a validator per field:
        # it runs for every event every consumer reads.
        # Read back from JSON, "Z" is already UTC (pydantic's own zero-offset tzinfo); only
        # other offsets are converted.
        for name in ("business_time", "recorded_at"):
            v = getattr(self, name)
            if v.utcoffset():
                object.__setattr__(self, name, v.astimezone(UTC))
        return self

    def to_json(self) -> bytes:
        data = self.model_dump(mode="json")
        if _orjson_exact(type(self.payload)):
            return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
        return canonical_json(data)

    def payload_digest(self) -> str:
        return digest(self.payload.model_dump(mode="json"))


Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


def _stored_validator(envelope: type[Envelope[Any]]) -> SchemaValidator | None:
    """``envelope``'s own validator without its model-level UTC step, or None if its schema is
    not shaped as expected (then decoding takes the full validator).

    Every event read pays for that step, a call back into Python from the validator core
    (~1 µs of the ~7 µs a typical event takes), while the log holds times in UTC: gongkai writes
    them so. The reader checks the two offsets itself and hands an event with any other to the
    full validator, which converts it; every other check is the same core schema's.
    """
    if not envelope.__pydantic_complete__:
        envelope.model_rebuild()  # built on first use (defer_build)
    schema: Any = envelope.__pydantic_core_schema__
    # A model used twice in the event (ReviewSigned's actor and signer are both an Actor)
    # puts it among the schema's definitions: the same steps, one level down.
    definitions = schema.get("definitions") if schema.get("type") == "definitions" else None
    outer = schema.get("schema", {}) if definitions is not None else schema
    if outer.get("type") != "function-after":
        return None
    inner = outer.get("schema", {})
    if inner.get("type") != "model" or inner.get("cls") is not envelope:
        return None
    function = outer.get("function", {}).get("function")
    if getattr(function, "__name__", None) != Envelope._utc.__name__:
        return None
    if definitions is not None:
        inner = {**schema, "schema": inner}
    return SchemaValidator(inner, getattr(envelope, "__pydantic_core_config__", None))


def _zero_offset_zone() -> Any:
    """The zone pydantic gives a time read back from JSON with "Z" or "+00:00": one object for
    every such time (pydantic-core keeps it), so ``decode`` can tell a UTC time by its zone's
    identity. Asking the time for its offset instead (``utcoffset``) calls into the zone and
    makes a timedelta: 1.4 µs a time, two a decoded event (3.5 % of a rebuild's fold)."""
    probe = SchemaValidator({"type": "datetime"})
    zone = probe.validate_json(b'"2000-01-01T00:00:00Z"').tzinfo
    if zone is None or zone.utcoffset(None) or zone is not probe.validate_json(
        b'"2000-01-02T00:00:00+00:00"'
    ).tzinfo:
        return object()  # a pydantic that makes a zone each time: no time has this one
    return zone


#: See ``_zero_offset_zone``; a time whose zone is not this one is asked its offset.
_UTC_ZONE = _zero_offset_zone()


@dataclass(frozen=True)
class Aggregate:
    """An aggregate type: what one of its ids names, and the shape of the id."""

    name: str
    id_shape: str
    about: str


class Registry:
    """Event type name -> current payload class, plus upcasters from each older version.

    Besides what decoding needs, it keeps what the published contracts need: the payload model
    of every older version still in logs (``register_past``), each upcast as field-level steps
    (``upcast_fields``) and every aggregate type's id shape (``aggregate``).
    """

    def __init__(self) -> None:
        self._types: dict[str, type[EventPayload]] = {}
        self._envelopes: dict[str, type[Envelope[Any]]] = {}
        #: ``_stored_validator`` of each type's envelope, built on its first decode.
        self._stored: dict[str, SchemaValidator | None] = {}
        #: Type -> (its stored validator, the type, its current version), for ``decode``'s
        #: common case; filled with ``_stored``.
        self._fast: dict[str, tuple[SchemaValidator, str, int]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}
        self._past: dict[tuple[str, int], type[EventPayload]] = {}
        self._steps: dict[tuple[str, int], tuple[Step, ...]] = {}
        self._aggregates: dict[str, Aggregate] = {}

    def register(self, cls: type[P]) -> type[P]:
        name = cls.event_type
        if name in self._types and self._types[name] is not cls:
            raise ValueError(f"event type {name} registered twice")
        self._types[name] = cls
        self._envelopes[name] = Envelope[cls]  # type: ignore[valid-type]
        return cls

    def upcaster(self, event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        def deco(fn: Upcaster) -> Upcaster:
            self._upcasters[(event_type, from_version)] = fn
            return fn

        return deco

    def upcast_fields(self, event_type: str, from_version: int, *steps: Step) -> None:
        """The upcaster from ``from_version`` as field-level steps, published with the schemas."""
        self._steps[(event_type, from_version)] = steps
        self._upcasters[(event_type, from_version)] = functools.partial(apply_steps, steps)

    def register_past(self, cls: type[P]) -> type[P]:
        """The payload model of an older version of an event type, as it was written.

        Readers never decode with it (they upcast the raw payload); it is the published schema
        of that version, for the events of it that logs still hold.
        """
        key = (cls.event_type, cls.schema_version)
        if key in self._past and self._past[key] is not cls:
            raise ValueError(f"{cls.event_type} v{cls.schema_version} registered twice")
        self._past[key] = cls
        return cls

    def aggregate(self, name: str, *, id_shape: str, about: str) -> None:
        """Declare an aggregate type (its events' ``aggregate_type``)."""
        self._aggregates[name] = Aggregate(name, id_shape, about)

    def aggregates(self) -> Mapping[str, Aggregate]:
        return dict(self._aggregates)

    def versions(self, event_type: str) -> dict[int, type[EventPayload]]:
        """Every version of ``event_type`` a log may hold: version -> payload model.

        A version between 1 and the current one without a model is missing (KeyError names
        it): the published schemas must cover every version ever written.
        """
        current = self.payload_class(event_type)
        out: dict[int, type[EventPayload]] = {current.schema_version: current}
        for version in range(1, current.schema_version):
            cls = self._past.get((event_type, version))
            if cls is None:
                raise KeyError(f"{event_type} v{version} has no registered model")
            out[version] = cls
        return dict(sorted(out.items()))

    def upcast_steps(self, event_type: str, from_version: int) -> tuple[Step, ...] | None:
        """The field-level steps of an upcaster, or None for one written as a function."""
        return self._steps.get((event_type, from_version))

    def payload_class(self, event_type: str) -> type[EventPayload]:
        try:
            return self._types[event_type]
        except KeyError:
            raise EventDecodeError(f"unknown event type {event_type!r}") from None

    def envelope_class(self, event_type: str) -> type[Envelope[Any]]:
        self.payload_class(event_type)
        return self._envelopes[event_type]

    def types(self) -> Mapping[str, type[EventPayload]]:
        return dict(self._types)

    def upcast(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Bring a raw envelope dict to the current schema version of its type."""
        etype = raw.get("type")
        version = raw.get("schema_version")
        if not isinstance(etype, str) or not isinstance(version, int):
            raise EventDecodeError("envelope lacks a string 'type' and an integer 'schema_version'")
        current = self.payload_class(etype).schema_version
        if version > current:
            raise EventDecodeError(f"{etype} v{version} is newer than this build (v{current})")
        if version < 1:
            raise EventDecodeError(f"{etype} has invalid schema version {version}")
        payload = raw.get("payload")
        if not isinstance(payload, dict):
            raise EventDecodeError("envelope payload must be an object")
        while version < current:
            step = self._upcasters.get((etype, version))
            if step is None:
                raise EventDecodeError(f"no upcaster for {etype} v{version}")
            payload = step(dict(payload))
            version += 1
        return {**raw, "payload": payload, "schema_version": version}

    def decode(
        self,
        data: bytes,
        headers: Mapping[str, str] | None = None,
        *,
        subject_type: str | None = None,
    ) -> Envelope[Any]:
        """Parse stored bytes into a typed envelope, upcasting older versions.

        The type comes from the subject's last token (or the Gk-Type header); the bytes are then
        validated straight against the current version's model. Only when that fails (an older
        version, or bad data) is the slower path taken: parse, upcast, validate.
        """
        etype = subject_type or (headers or {}).get(HDR_TYPE)
        fast = self._fast.get(etype or "")
        if fast is not None:
            # The common case first, in as few steps as it takes (every event read pays for
            # them): the current version of the type the subject names, its times in UTC as
            # gongkai writes them. Anything else, refusals included, takes the path below,
            # which validates again and decides as it always did.
            try:
                env = fast[0].validate_json(data)
            except (ValidationError, ArithmeticError):
                pass
            else:
                fields = env.__dict__
                business, recorded = fields["business_time"], fields["recorded_at"]
                if (
                    fields["type"] == fast[1]
                    and fields["schema_version"] == fast[2]
                    and (business.tzinfo is _UTC_ZONE or not business.utcoffset())
                    and (recorded.tzinfo is _UTC_ZONE or not recorded.utcoffset())
                ):
                    return env  # type: ignore[no-any-return]
        cls = self._types.get(etype or "")
        if cls is not None:
            envelope = self._envelopes[cls.event_type]
            try:
                stored = self._stored[cls.event_type]
            except KeyError:
                stored = self._stored[cls.event_type] = _stored_validator(envelope)
                if stored is not None:
                    self._fast[cls.event_type] = (stored, cls.event_type, cls.schema_version)
            try:
                if stored is None:
                    env = envelope.model_validate_json(data)
                else:
                    env = stored.validate_json(data)
                    if env.business_time.utcoffset() or env.recorded_at.utcoffset():
                        # Not UTC as written by gongkai: the model's own step converts it.
                        env = envelope.model_validate_json(data)
            except (ValidationError, ArithmeticError):
                env = None  # the slow path below says what is wrong
            if env is not None and env.type == cls.event_type and (
                env.schema_version < cls.schema_version
            ):
                # An older version whose payload happens to fit the current model (a field
                # added with a default, as TokenIssued v1 -> v2): its upcaster decides.
                env = None
            if env is not None:
                if env.type != cls.event_type or env.schema_version != cls.schema_version:
                    raise EventDecodeError(
                        f"subject says {cls.event_type} v{cls.schema_version}, "
                        f"body says {env.type} v{env.schema_version}"
                    )
                return env
        try:
            try:
                raw = json.loads(data)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise EventDecodeError(f"not JSON: {exc}") from None
            if not isinstance(raw, dict):
                raise EventDecodeError("an event must be a JSON object")
            if cls is not None and raw.get("type") != cls.event_type:
                raise EventDecodeError(
                    f"subject says {cls.event_type}, body says {raw.get('type')}"
                )
            raw = self.upcast(raw)
            return self._envelopes[raw["type"]].model_validate(raw)
        except EventDecodeError:
            raise
        except ValidationError as exc:
            raise EventDecodeError(f"invalid event: {exc.errors(include_url=False)[:3]}") from None
        except (
            LookupError, TypeError, ValueError, AttributeError, ArithmeticError, RecursionError
        ) as exc:
            # An upcaster meeting a malformed old payload, JSON nested deeper than the parser
            # goes, a time that leaves datetime's range in UTC (0001-01-01T00:00+08:00):
            # consumers dead-letter EventDecodeError and nothing else, so anything that escaped
            # here would stall a projection on this one message for ever.
            raise EventDecodeError(f"invalid event: {type(exc).__name__}: {exc}") from None


HDR_TYPE = "Gk-Type"
HDR_VERSION = "Gk-Schema-Version"

REGISTRY = Registry()


def event(cls: type[P]) -> type[P]:
    """Class decorator: register an event payload class in the global registry."""
    return REGISTRY.register(cls)


def new_event(
    payload: EventPayload,
    *,
    aggregate_id: str,
    actor: Actor,
    command_id: str,
    index: int = 0,
    business_time: datetime | None = None,
    recorded_at: datetime,
    correlation_id: str | None = None,
    causation_id: str | None = None,
) -> Envelope[Any]:
    """Build the envelope for one new event of a command.

    ``recorded_at`` comes from the injected clock; the event id is derived from the command id
    and the event's index in the command, so a retry yields byte-identical ids.
    """
    event_id = str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{command_id}/{index}"))
    if not correlation_id:
        # Without a cause, the chain starts here: the command's first event names it
        # (gongkai.causality), always an event id, never the command id's own shape. For that
        # first event it is its own id (one uuid5 fewer: 8 µs a submission).
        correlation_id = (
            event_id if index == 0 else str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{command_id}/0"))
        )
    cls = type(payload)
    return Envelope[cls](  # type: ignore[valid-type]
        event_id=event_id,
        type=cls.event_type,
        schema_version=cls.schema_version,
        aggregate_type=cls.aggregate_type,
        aggregate_id=aggregate_id,
        business_time=business_time or recorded_at,
        recorded_at=recorded_at,
        actor=actor,
        command_id=command_id,
        correlation_id=correlation_id,
        causation_id=causation_id,
        payload=payload,
    )
