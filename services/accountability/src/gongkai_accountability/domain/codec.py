"""One codec for the read model's typed rows: a frozen dataclass to the JSON object SQL keeps
and back, read off the class's fields and their types.

The rules (the stored JSON of every row must stay what it was, byte for byte):

* one key a field, named as the field, in field order (HTTP answers hold the object as it is);
* a value JSON already is written as it is: ``str``, ``int``, ``bool``, a plain ``Row``;
* a tuple is kept as a list (a fixed-length one too: a cause, a grant), a ``Mapping`` as a
  dict, each element by its own type; a nested dataclass by its own codec; a union of
  dataclasses is read back as the first of them whose required keys the object has;
* a field with ``ADDED`` metadata is a key later rows gained: left out while None, so a row
  written before it encodes to its own bytes again. Where such a key sits before keys every
  row has, the fields after it are keyword-only (``KW_ONLY``): a dataclass puts no field
  without a default after one with;
* a field with ``also(key)`` metadata is written a second time under ``key`` (a column lists
  filter on), and never read back from it;
* a field with ``REST`` metadata (a ``Mapping[str, Any]``, the class's last field) holds every
  other key of the object: written after the others, in its own order, and read back as the
  keys no other field names (a step of a trail: what each kind of step says besides);
* read back, a key of an optional type may be absent (None); any other key must be there.

A second form, what SQL keeps (``store``/``load``), differs in one way: a class marked
``ARRAY`` (a ``ClassVar`` set true: a step of a trail, a person, a post's form) is kept as a
JSON array of its fields' values in field order (its ``REST`` mapping, if any, the last
element) instead of an object. Those are the objects a row repeats (a post's trail repeats a
step's eight keys, and a person's three, for every step): their key names were a seventh of a
post's stored bytes, and building an object for each, then sorting its keys, most of its
encoding. Readers never see this form: rows are read back (``load``) into the same typed
objects, and HTTP answers, exports and digests of folds are ``encode``'s objects. An ``ARRAY``
class has no ``ADDED`` or ``also`` field (its array has a fixed length, read back by
position) and is no member of a union (a union is told by its members' keys); a class with no
``ARRAY`` class beneath it is stored as ``encode`` writes it.

The plan is worked out once per class, when its table is made, and becomes the class's own
``encode``/``decode`` functions (below, ``_encoder``): the fold writes rows on every event, and
the codec costs no more per row than the pairs written by hand did.
"""

from __future__ import annotations

import dataclasses
import itertools
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Generic, Self, TypeVar

from gongkai_accountability.domain.rows import Row

T = TypeVar("T")

#: A value's conversion one way (None: kept as it is, no call).
Convert = Callable[[Any], Any] | None

_ADDED = "gongkai.added"
_ALSO = "gongkai.also"
_REST = "gongkai.rest"
_SAME = "gongkai.same"


#: A field's metadata (``field(default=None, metadata=ADDED)``): a key later rows gained,
#: left out while None.
ADDED: Mapping[str, bool] = types.MappingProxyType({_ADDED: True})


#: A field's metadata (``field(metadata=REST)``): the object's other keys, flattened into it.
REST: Mapping[str, bool] = types.MappingProxyType({_REST: True})


def same_as(name: str) -> Mapping[str, str]:
    """A field's metadata (``field(metadata=same_as(name))``) in an ``ARRAY`` class: kept in
    SQL's form as null where its value equals field ``name``'s (a step recorded at its business
    time), and read back as that field's value there. The field is a ``str``, never None."""
    return {_SAME: name}


def also(key: str) -> Mapping[str, str]:
    """A field's metadata (``field(metadata=also(key))``): written a second time under
    ``key``, never read back from it. Not a field of its own: the field has no default."""
    return {_ALSO: key}


@dataclasses.dataclass(frozen=True, slots=True)
class Codec(Generic[T]):
    """How one row class is stored."""

    encode: Callable[[T], Row]
    decode: Callable[[Row], T]
    #: The keys ``decode`` cannot do without (a union's member is told by them).
    required: frozenset[str]
    #: The form SQL keeps (``ARRAY`` classes as arrays) and back: ``encode``/``decode``
    #: themselves where no ``ARRAY`` class is beneath.
    store: Callable[[T], Any]
    load: Callable[[Any], T]


_CODECS: dict[type[Any], Codec[Any]] = {}


def is_array(cls: object) -> bool:
    """Whether SQL keeps objects of ``cls`` as arrays (its ``ARRAY`` class variable)."""
    return bool(getattr(cls, "ARRAY", False))


class Stored:
    """A row class's ``encode``/``decode`` by its codec (tables call the codec directly)."""

    __slots__ = ()

    def encode(self) -> Row:
        """The JSON object SQL keeps (and HTTP answers hold)."""
        return codec(type(self)).encode(self)

    @classmethod
    def decode(cls, row: Row) -> Self:
        """The row a stored JSON object is."""
        return codec(cls).decode(row)


def codec(cls: type[T]) -> Codec[T]:
    """The codec of a dataclass, planned on first use and kept."""
    found = _CODECS.get(cls)
    if found is None:
        found = _CODECS[cls] = _plan(cls)
    return found


@dataclasses.dataclass(frozen=True, slots=True)
class _Key:
    """One key of the stored object: the field it is read from and how."""

    key: str
    attr: str
    #: How the value is written to JSON and read back (None: as it is).
    convert: Convert
    restore: Convert
    may_be_none: bool
    #: Left out while None (``ADDED``).
    added: bool = False
    #: A second copy of another field (``also``): never read back.
    copy: bool = False
    #: Passed by name (a keyword-only field: one after ``KW_ONLY``).
    by_name: bool = False
    #: Every key no other field names (``REST``).
    rest: bool = False
    #: The field whose value it is where SQL's array holds null (``same_as``).
    same_as: str | None = None


def _plan(cls: type[T]) -> Codec[T]:
    keys = _keys(cls, stored=False)
    required = frozenset(
        k.key for k in keys if not k.may_be_none and not k.copy and not k.rest
    )
    encode, decode = _encoder(cls, keys), _decoder(cls, keys)
    kept = _keys(cls, stored=True)
    if is_array(cls):
        if any(k.added or k.copy or k.by_name for k in kept):
            raise TypeError(f"{cls.__name__}: an array has every field, by position")
        if any(
            k.same_as is not None and (k.may_be_none or k.convert is not None) for k in kept
        ):
            raise TypeError(f"{cls.__name__}: only a str that is never None is kept as null")
        store, load = _array_encoder(cls, kept), _array_decoder(cls, kept)
    elif any(k.same_as is not None for k in kept):
        raise TypeError(f"{cls.__name__}: only an array keeps a value as null (same_as)")
    elif all(
        (k.convert, k.restore) == (s.convert, s.restore) for k, s in zip(keys, kept, strict=True)
    ):
        store, load = encode, decode
    else:
        store, load = _encoder(cls, kept), _decoder(cls, kept)
    return Codec(encode, decode, required, store, load)


def _keys(cls: type[Any], *, stored: bool) -> list[_Key]:
    """The keys of ``cls``'s object, each converted as ``stored`` says (SQL's form or not)."""
    hints = typing.get_type_hints(cls)
    keys: list[_Key] = []
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    for f in fields:
        if f.metadata.get(_REST):
            if f is not fields[-1] or hints[f.name] != Mapping[str, Any]:
                raise TypeError(f"{cls.__name__}.{f.name}: the rest is a Mapping, last")
            keys.append(_Key(f.name, f.name, None, None, False, rest=True))
            continue
        tp, may_be_none = _unwrap(hints[f.name])
        enc, dec = _converters(tp, stored)
        added = bool(f.metadata.get(_ADDED))
        keys.append(
            _Key(
                f.name, f.name, enc, dec, may_be_none, added=added, by_name=bool(f.kw_only),
                same_as=f.metadata.get(_SAME),
            )
        )
        if _ALSO in f.metadata:
            keys.append(_Key(f.metadata[_ALSO], f.name, enc, dec, may_be_none, copy=True))
    return keys


# ``encode`` and ``decode`` are made as source once per class, as ``dataclasses`` makes
# ``__init__``, and read as the pairs written by hand did: a loop over the plan cost four times
# as much a row (a dict built from pairs is slow), and a rebuild encodes every row of the read
# model. The source is made from the class's own field names, never from input.


def _encoder(cls: type[Any], keys: list[_Key]) -> Callable[[Any], Row]:
    """One dict display, then each added key set while not None."""
    env: dict[str, Any] = {}
    display: list[str] = []
    after: list[str] = []
    for i, k in enumerate(keys):
        key, attr, convert = repr(k.key), f"obj.{k.attr}", f"_c{i}"
        if k.rest:
            after.append(f"    out.update({attr})")
            continue
        if k.convert is not None:
            env[convert] = k.convert
        if k.added:
            value = f"{convert}(v)" if k.convert is not None else "v"
            after += [f"    if (v := {attr}) is not None:", f"        out[{key}] = {value}"]
            continue
        if k.convert is None:
            value = attr
        elif k.may_be_none:
            value = f"None if (v := {attr}) is None else {convert}(v)"
        else:
            value = f"{convert}({attr})"
        if after:
            after.append(f"    out[{key}] = {value}")
        else:
            display.append(f"        {key}: {value},")
    lines = ["def encode(obj):", "    out = {", *display, "    }", *after, "    return out"]
    return _made(cls, "encode", lines, env)


def _decoder(cls: type[Any], keys: list[_Key]) -> Callable[[Row], Any]:
    """The class called with each field's value in order (by name after ``KW_ONLY``):
    ``row[key]`` where the key must be there (a stored row missing one fails where it is read,
    not where the None is used), ``row.get(key)`` where its type allows None."""
    env: dict[str, Any] = {"_cls": cls, "_named": frozenset(k.key for k in keys)}
    args: list[str] = []
    for i, k in enumerate(keys):
        if k.copy:
            continue
        if k.rest:
            args.append("        {k: v for k, v in row.items() if k not in _named},")
            continue
        key, restore = repr(k.key), f"_r{i}"
        if k.restore is not None:
            env[restore] = k.restore
        if not k.may_be_none:
            value = f"row[{key}]" if k.restore is None else f"{restore}(row[{key}])"
        elif k.restore is None:
            value = f"row.get({key})"
        else:
            value = f"None if (v := row.get({key})) is None else {restore}(v)"
        args.append(f"        {k.attr}={value}," if k.by_name else f"        {value},")
    return _made(cls, "decode", ["def decode(row):", "    return _cls(", *args, "    )"], env)


def _value(attr: str, k: _Key, convert: str) -> str:
    """The expression of one key's value as written (``attr`` read once)."""
    if k.convert is None:
        return attr
    if k.may_be_none:
        return f"None if (v := {attr}) is None else {convert}(v)"
    return f"{convert}({attr})"


def _array_encoder(cls: type[Any], keys: list[_Key]) -> Callable[[Any], Any]:
    """One list display: each field's value in field order (the rest's mapping as it is)."""
    env: dict[str, Any] = {}
    items: list[str] = []
    for i, k in enumerate(keys):
        if k.same_as is not None:
            items.append(f"        None if (v := obj.{k.attr}) == obj.{k.same_as} else v,")
            continue
        if k.convert is not None:
            env[f"_c{i}"] = k.convert
        items.append(f"        {_value(f'obj.{k.attr}', k, f'_c{i}')},")
    return _made(cls, "store", ["def store(obj):", "    return [", *items, "    ]"], env)  # type: ignore[no-any-return]


def _array_decoder(cls: type[Any], keys: list[_Key]) -> Callable[[Any], Any]:
    """The array unpacked (one of another length fails here), the class called by position."""
    env: dict[str, Any] = {"_cls": cls}
    names = [f"_{i}" for i in range(len(keys))]
    at = {k.attr: names[i] for i, k in enumerate(keys)}
    args: list[str] = []
    for i, k in enumerate(keys):
        if k.same_as is not None:
            args.append(f"        {at[k.same_as]} if {names[i]} is None else {names[i]},")
            continue
        if k.restore is None:
            args.append(f"        {names[i]},")
            continue
        env[f"_r{i}"] = k.restore
        value = f"_r{i}({names[i]})"
        if k.may_be_none:
            value = f"None if {names[i]} is None else {value}"
        args.append(f"        {value},")
    unpack = f"    ({', '.join(names)},) = row"
    lines = ["def load(row):", unpack, "    return _cls(", *args, "    )"]
    return _made(cls, "load", lines, env)  # type: ignore[no-any-return]


_REPLACERS: dict[type[Any], Callable[[Any, dict[str, Any]], Any]] = {}


def replace(obj: T, /, **changes: Any) -> T:
    """``dataclasses.replace(obj, **changes)`` for a frozen slotted row, at a ninth of its cost.

    The fold makes a new post row for every step of its trail: ``dataclasses.replace`` reads
    every field through a loop and passes them all by name to ``__init__`` (half the fold's
    time on a log of posts). This is made as source once per class, as ``encode``/``decode``
    are: a new object with every slot copied, then the changes set (a name that is not a
    field has no slot and is refused). No ``__init__`` runs: row classes have no
    ``__post_init__``. Each slot is set through its own descriptor's ``__set__``, bound once:
    ``object.__setattr__`` looked the name up on the class for every field of every copy
    (a post's 21 slots: 4.4 us a replace, 1.3 us so).
    """
    made = _REPLACERS.get(type(obj))
    if made is None:
        made = _REPLACERS[type(obj)] = _replacer(type(obj))
    return made(obj, changes)  # type: ignore[no-any-return]


def _replacer(cls: type[Any]) -> Callable[[Any, dict[str, Any]], Any]:
    if hasattr(cls, "__post_init__") or not hasattr(cls, "__slots__"):
        raise TypeError(f"{cls!r}: only slotted rows without __post_init__ are replaced so")
    setters = {f.name: _slot(cls, f.name).__set__ for f in dataclasses.fields(cls)}
    env: dict[str, Any] = {"_cls": cls, "_new": object.__new__, "_setters": setters}
    lines = ["def replace(obj, changes):", "    new = _new(_cls)"]
    for i, name in enumerate(setters):
        env[f"_s{i}"] = setters[name]
        lines.append(f"    _s{i}(new, obj.{name})")
    lines += [
        "    for k, v in changes.items():",
        "        if (s := _setters.get(k)) is None:",
        "            raise AttributeError(f'{_cls.__name__} has no field {k!r}')",
        "        s(new, v)",
        "    return new",
    ]
    made: Callable[[Any, dict[str, Any]], Any] = _made(cls, "replace", lines, env)
    return made


def maker(cls: type[T], *, by_name: bool = False) -> Callable[..., T]:
    """The row class called with every field by position, at half its cost (a ``Step``: 1.0 us
    by the class, 0.5 so): a new object with each slot set through its own descriptor, as
    ``replace`` sets them, where a frozen dataclass's ``__init__`` calls
    ``object.__setattr__`` for each field. For a row the fold makes on every event.

    ``by_name``: every field by name instead (keyword-only), a field with a default left out
    as the class allows (a post's 20 fields: 4.0 us by the class, 2.2 so); no default made by
    a factory.
    """
    if hasattr(cls, "__post_init__") or not hasattr(cls, "__slots__"):
        raise TypeError(f"{cls!r}: only slotted rows without __post_init__ are made so")
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    env: dict[str, Any] = {"_cls": cls, "_new": object.__new__}
    params: list[str] = []
    for i, f in enumerate(fields):
        if by_name and f.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{cls!r}.{f.name}: no default made by a factory here")
        if by_name and f.default is not dataclasses.MISSING:
            env[f"_d{i}"] = f.default
            params.append(f"{f.name}=_d{i}")
        else:
            params.append(f.name)
    lines = [f"def make({'*, ' if by_name else ''}{', '.join(params)}):", "    new = _new(_cls)"]
    for i, f in enumerate(fields):
        env[f"_s{i}"] = _slot(cls, f.name).__set__
        lines.append(f"    _s{i}(new, {f.name})")
    lines.append("    return new")
    made: Callable[..., T] = _made(cls, "make", lines, env)
    return made


def _slot(cls: type[Any], name: str) -> Any:
    """The slot descriptor of field ``name`` (the class's own, or a base's)."""
    for klass in cls.__mro__:
        found = klass.__dict__.get(name)
        if isinstance(found, types.MemberDescriptorType):
            return found
    raise TypeError(f"{cls!r}.{name} is no slot")


def _made(cls: type[Any], name: str, lines: list[str], env: dict[str, Any]) -> Any:
    exec(compile("\n".join(lines), f"<{name} {cls.__name__}>", "exec"), env)  # noqa: S102
    return env[name]


def _unwrap(tp: Any) -> tuple[Any, bool]:
    """The type without its ``| None``, and whether it had one."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        rest = tuple(a for a in args if a is not type(None))
        if len(rest) < len(args):
            return (rest[0] if len(rest) == 1 else typing.Union[rest]), True  # noqa: UP007
    return tp, False


def _converters(tp: Any, stored: bool) -> tuple[Convert, Convert]:
    """How a value of type ``tp`` (not None) is written to JSON and read back (in SQL's form
    where ``stored``)."""
    if tp in (str, int, bool, float) or tp is Any:
        return None, None
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        c = codec(tp)  # type: ignore[arg-type]
        return (c.store, c.load) if stored else (c.encode, c.decode)
    if origin is dict and args == (str, Any):
        # A plain JSON object (``Row``): kept as it is both ways.
        return None, None
    if origin in (typing.Union, types.UnionType):
        return _union(args, stored)
    if origin is tuple:
        return _sequence(args, stored)
    if origin is Mapping and args[0] is str:
        enc, dec = _converters(args[1], stored)
        if enc is None and dec is None:
            return dict, None
        return _each_value(enc), _each_value(dec)
    raise TypeError(f"no stored form for {tp!r}")


def _sequence(args: tuple[Any, ...], stored: bool) -> tuple[Convert, Convert]:
    if len(args) == 2 and args[1] is Ellipsis:
        enc, dec = _converters(args[0], stored)
    else:
        # A fixed-length tuple (a cause, a grant): its parts are JSON already.
        parts = [_converters(a, stored) for a in args]
        if any(p != (None, None) for p in parts):
            raise TypeError(f"no stored form for tuple{list(args)!r}")
        enc = dec = None
    if enc is None and dec is None:
        return list, tuple
    return _each(enc, list), _each(dec, tuple)


def _each(convert: Convert, into: Callable[[Any], Any]) -> Callable[[Any], Any]:
    if convert is None:
        return into
    c = convert
    if into is list:
        return lambda values: [c(v) for v in values]
    return lambda values: into([c(v) for v in values])


def _each_value(convert: Convert) -> Callable[[Any], Any]:
    if convert is None:
        return dict
    c = convert
    return lambda values: {k: c(v) for k, v in values.items()}


def _union(members: tuple[Any, ...], stored: bool) -> tuple[Convert, Convert]:
    """A value of one of several row classes: written by its own class, read back as the
    first class whose required keys the object has (in SQL's form too: no member is an
    ``ARRAY`` class, which has no keys to be told by)."""
    if not all(dataclasses.is_dataclass(m) and not is_array(m) for m in members):
        raise TypeError(f"no stored form for a union of {members!r}")
    by_type = {m: codec(m) for m in members}
    told = tuple(
        (c.required, c.load if stored else c.decode) for c in by_type.values()
    )
    for a, b in itertools.permutations(told, 2):
        if a[0] <= b[0]:
            # An object of the one would be read back as the other.
            raise TypeError(f"the members of {members!r} are not told apart by their keys")

    encoders = {m: c.store if stored else c.encode for m, c in by_type.items()}

    def encode(value: Any) -> Row:
        return encoders[type(value)](value)  # type: ignore[no-any-return]

    def decode(row: Row) -> Any:
        for required, dec in told:
            if required <= row.keys():
                return dec(row)
        raise KeyError(f"none of {members!r} has the keys {sorted(row)}")

    return encode, decode
