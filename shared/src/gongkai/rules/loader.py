"""Read and validate rule-set files (YAML), strictly: a wrong deadline is worse than none.

Every problem is reported with the file and the place in it (``catalog[3].columns[1].rules[0]
.every``), and loading stops: the services refuse to start rather than compute deadlines from a
misread table.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import yaml

from gongkai import yamltext
from gongkai.rules.model import (
    RULE_KINDS,
    SITE_MEASURES,
    UNIT_KINDS,
    Catalog,
    Column,
    Group,
    MonthDay,
    Period,
    Rule,
    RuleSet,
    SiteLine,
    Text,
)

__all__ = [
    "CATALOG_RULE_SET", "DATA_DIR", "DEFAULT_RULE_SETS", "RuleSetError", "default_catalog",
    "load_rule_sets", "shipped_rule_sets",
]

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_RULE_SETS: tuple[str, ...] = ("wenan-2018", "national-2019")
CATALOG_RULE_SET = "wenan-2018"

# Column codes appear in subjects and aggregate ids as "<unit>--<column>"; no hyphen keeps
# that split unambiguous.
_CODE = re.compile(r"[a-z][a-z0-9_]{0,47}")
_ID = re.compile(r"[a-z0-9][a-z0-9_\-]{0,47}")
_PERIOD = re.compile(r"([1-9][0-9]{0,2})\s*(day|week|month|year)s?")
_MONTH_DAY = re.compile(r"([0-9]{2})-([0-9]{2}|last)")
_MAX_WORKING_DAYS = 250


class RuleSetError(ValueError):
    """A rule-set file is missing, unreadable or wrong; the message says where."""

    def __init__(self, source: str, where: str, message: str) -> None:
        loc = f"{source}: {where}: " if where else f"{source}: "
        super().__init__(loc + message)
        self.source = source
        self.where = where


class _Ctx:
    """Where we are in a document, for error messages."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> RuleSetError:
        return RuleSetError(self.source, where, message)

    def mapping(
        self, value: Any, where: str, required: set[str], optional: set[str]
    ) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(where, f"expected a mapping, got {type(value).__name__}")
        keys = set(value)
        if not all(isinstance(k, str) for k in keys):
            raise self.fail(where, "every key must be text")
        missing = required - keys
        if missing:
            raise self.fail(where, f"missing key(s): {', '.join(sorted(missing))}")
        unknown = keys - required - optional
        if unknown:
            # Usually a misspelling: silently ignoring it would drop a deadline.
            allowed = ", ".join(sorted(required | optional))
            raise self.fail(
                where, f"unknown key(s): {', '.join(sorted(unknown))} (allowed: {allowed})"
            )
        return value

    def text(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, f"expected non-empty text, got {value!r}")
        return value.strip()

    def label(self, value: Any, where: str) -> Text:
        m = self.mapping(value, where, {"zh", "en"}, set())
        return Text(self.text(m["zh"], f"{where}.zh"), self.text(m["en"], f"{where}.en"))

    def code(self, value: Any, where: str, pattern: re.Pattern[str] = _CODE) -> str:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise self.fail(
                where, f"{value!r} is not a valid code (lower-case ASCII, {pattern.pattern})"
            )
        return value

    def count(self, value: Any, where: str, lo: int, hi: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise self.fail(where, f"expected a whole number from {lo} to {hi}, got {value!r}")
        return value

    def period(self, value: Any, where: str) -> Period:
        m = _PERIOD.fullmatch(value.strip()) if isinstance(value, str) else None
        if m is None:
            raise self.fail(where, f"expected e.g. '2 weeks', '6 months', '1 year', got {value!r}")
        unit = cast(Any, m.group(2) + "s")
        return Period(int(m.group(1)), unit)

    def month_day(self, value: Any, where: str) -> MonthDay:
        m = _MONTH_DAY.fullmatch(value.strip()) if isinstance(value, str) else None
        if m is None:
            raise self.fail(
                where, f"expected MM-DD or MM-last (e.g. 01-31, 02-last), got {value!r}"
            )
        month = int(m.group(1))
        if not 1 <= month <= 12:
            raise self.fail(where, f"month {month} does not exist")
        if m.group(2) == "last":
            return MonthDay(month, None)
        day = int(m.group(2))
        # Checked against a leap year: 02-29 is allowed and falls back to 02-28 in other years.
        if not 1 <= day <= [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]:
            raise self.fail(where, f"{value} is not a day of the year")
        return MonthDay(month, day)

    def unit_kind(self, value: Any, where: str) -> str:
        if value not in UNIT_KINDS:
            raise self.fail(where, f"unknown unit kind {value!r} (known: {', '.join(UNIT_KINDS)})")
        return cast(str, value)


_RULE_KEYS = {
    "periodic": {"every"},
    "triggered": {"within_working_days"},
    "leadership": {"within_working_days"},
    "dated": {"by"},
    "blank": set(),
}
_RULE_OPTIONAL = {"dated": {"by_unit_kind"}}


def _rule(
    ctx: _Ctx, value: Any, where: str, rule_set: str, warn: int, *, with_columns: bool
) -> Rule:
    if not isinstance(value, Mapping):
        raise ctx.fail(where, f"expected a mapping, got {type(value).__name__}")
    kind = value.get("kind")
    if kind not in RULE_KINDS:
        raise ctx.fail(
            f"{where}.kind", f"unknown rule kind {kind!r} (known: {', '.join(RULE_KINDS)})"
        )
    required = {"id", "kind", *_RULE_KEYS[kind]} | ({"columns"} if with_columns else set())
    pre = ctx.mapping(
        value, where, required, {"text", "warn_working_days"} | _RULE_OPTIONAL.get(kind, set())
    )
    rid = ctx.code(pre["id"], f"{where}.id", _ID)
    text = ctx.label(pre["text"], f"{where}.text") if "text" in pre else None
    w = pre.get("warn_working_days", warn)
    w = ctx.count(w, f"{where}.warn_working_days", 0, 60)
    every = ctx.period(pre["every"], f"{where}.every") if kind == "periodic" else None
    within = None
    if kind in ("triggered", "leadership"):
        within = ctx.count(
            pre["within_working_days"], f"{where}.within_working_days", 1, _MAX_WORKING_DAYS
        )
    by = ctx.month_day(pre["by"], f"{where}.by") if kind == "dated" else None
    by_kind: dict[str, MonthDay] = {}
    if "by_unit_kind" in pre:
        raw = ctx.mapping(pre["by_unit_kind"], f"{where}.by_unit_kind", set(), set(UNIT_KINDS))
        for k, v in raw.items():
            by_kind[ctx.unit_kind(k, f"{where}.by_unit_kind")] = ctx.month_day(
                v, f"{where}.by_unit_kind.{k}"
            )
    return Rule(
        rule_set=rule_set,
        id=rid,
        kind=kind,
        text=text,
        warn_working_days=w,
        every=every,
        within_working_days=within,
        by=by,
        by_unit_kind=by_kind,
    )


def _read(ref: str | Path) -> tuple[str, Mapping[str, Any]]:
    """(source label, document) for a shipped rule-set name or a path to a YAML file."""
    if isinstance(ref, str) and _ID.fullmatch(ref) and not ref.endswith((".yaml", ".yml")):
        path = DATA_DIR / f"{ref}.yaml"
        if not path.is_file():
            shipped = ", ".join(shipped_rule_sets())
            raise RuleSetError(ref, "", f"no such rule set (shipped: {shipped}; or give a path)")
    else:
        path = Path(ref)
    source = str(path) if path.parent != DATA_DIR else path.name
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleSetError(source, "", f"cannot read: {exc}") from None
    try:
        doc = yamltext.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        raise RuleSetError(
            source, where, f"not valid YAML: {getattr(exc, 'problem', exc)}"
        ) from None
    if not isinstance(doc, Mapping):
        raise RuleSetError(source, "", "expected a mapping at the top level")
    return source, doc


def _catalog(ctx: _Ctx, rs_id: str, value: Any, warn: int) -> tuple[Catalog, dict[str, list[Rule]]]:
    if not isinstance(value, list) or not value:
        raise ctx.fail("catalog", "expected a non-empty list of groups")
    groups: list[Group] = []
    columns: dict[str, Column] = {}
    rules: dict[str, list[Rule]] = {}
    seen_groups: set[str] = set()
    for gi, graw in enumerate(value):
        gw = f"catalog[{gi}]"
        g = ctx.mapping(graw, gw, {"group", "zh", "en", "columns"}, {"deadline", "rules"})
        gcode = ctx.code(g["group"], f"{gw}.group")
        if gcode in seen_groups:
            raise ctx.fail(f"{gw}.group", f"group {gcode!r} appears twice")
        seen_groups.add(gcode)
        gdeadline = ctx.label(g["deadline"], f"{gw}.deadline") if "deadline" in g else None
        grules = [
            _rule(ctx, r, f"{gw}.rules[{ri}]", rs_id, warn, with_columns=False)
            for ri, r in enumerate(_list(ctx, g.get("rules", []), f"{gw}.rules"))
        ]
        codes: list[str] = []
        for ci, craw in enumerate(_list(ctx, g["columns"], f"{gw}.columns", non_empty=True)):
            cw = f"{gw}.columns[{ci}]"
            c = ctx.mapping(
                craw,
                cw,
                {"code", "zh", "en"},
                {"deadline", "rules", "unit_kinds", "hidden_by_default", "redatable"},
            )
            code = ctx.code(c["code"], f"{cw}.code")
            if code in columns:
                raise ctx.fail(f"{cw}.code", f"column {code!r} appears twice")
            deadline = ctx.label(c["deadline"], f"{cw}.deadline") if "deadline" in c else gdeadline
            if deadline is None:
                raise ctx.fail(cw, "no deadline text: give one for the column or its group")
            kinds: frozenset[str] | None = None
            if "unit_kinds" in c:
                raw_kinds = _list(ctx, c["unit_kinds"], f"{cw}.unit_kinds", non_empty=True)
                kinds = frozenset(ctx.unit_kind(k, f"{cw}.unit_kinds") for k in raw_kinds)
            columns[code] = Column(
                code=code,
                zh=ctx.text(c["zh"], f"{cw}.zh"),
                en=ctx.text(c["en"], f"{cw}.en"),
                group=gcode,
                deadline=deadline,
                unit_kinds=kinds,
                hidden_by_default=_flag(
                    ctx, c.get("hidden_by_default", False), f"{cw}.hidden_by_default"
                ),
                redatable=_flag(ctx, c.get("redatable", False), f"{cw}.redatable"),
            )
            # A column's own rules come on top of its group's (a table row spanning columns).
            crules = [
                _rule(ctx, r, f"{cw}.rules[{ri}]", rs_id, warn, with_columns=False)
                for ri, r in enumerate(_list(ctx, c.get("rules", []), f"{cw}.rules"))
            ]
            rules[code] = [*grules, *crules]
            codes.append(code)
        groups.append(
            Group(gcode, ctx.text(g["zh"], f"{gw}.zh"), ctx.text(g["en"], f"{gw}.en"), tuple(codes))
        )
    return Catalog(rs_id, tuple(groups), columns), rules


def _list(ctx: _Ctx, value: Any, where: str, *, non_empty: bool = False) -> list[Any]:
    if not isinstance(value, list) or (non_empty and not value):
        raise ctx.fail(where, "expected a non-empty list" if non_empty else "expected a list")
    return value


def _flag(ctx: _Ctx, value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ctx.fail(where, f"expected true or false, got {value!r}")
    return value


def _site(ctx: _Ctx, value: Any, catalog: Catalog, rule_ids: set[str]) -> tuple[SiteLine, ...]:
    lines: list[SiteLine] = []
    seen: set[str] = set()
    for i, raw in enumerate(_list(ctx, value, "site")):
        w = f"site[{i}]"
        m = ctx.mapping(raw, w, {"id", "measure", "warn", "veto", "text"}, {"rules", "columns"})
        lid = ctx.code(m["id"], f"{w}.id", _ID)
        if lid in seen:
            raise ctx.fail(f"{w}.id", f"site line {lid!r} appears twice")
        seen.add(lid)
        measure = m["measure"]
        if measure not in SITE_MEASURES:
            raise ctx.fail(
                f"{w}.measure", f"unknown measure {measure!r} (known: {', '.join(SITE_MEASURES)})"
            )
        veto = ctx.count(m["veto"], f"{w}.veto", 1, 100000)
        warn = ctx.count(m["warn"], f"{w}.warn", 1, 100000)
        if warn >= veto:
            raise ctx.fail(
                f"{w}.warn", f"the warning level ({warn}) must be below the veto ({veto})"
            )
        rules: frozenset[str] | None = None
        if "rules" in m:
            if measure != "stale_columns":
                raise ctx.fail(f"{w}.rules", "only a stale_columns line counts by rule")
            rules = frozenset(_list(ctx, m["rules"], f"{w}.rules", non_empty=True))
            unknown = sorted(rules - rule_ids)
            if unknown:
                raise ctx.fail(f"{w}.rules", f"no such rule in this rule set: {', '.join(unknown)}")
        columns: tuple[str, ...] = ()
        if measure == "idle_days":
            if "columns" not in m:
                raise ctx.fail(w, "an idle_days line names the homepage's columns")
            columns = tuple(_list(ctx, m["columns"], f"{w}.columns", non_empty=True))
            unknown = sorted(set(columns) - set(catalog.columns))
            if unknown:
                raise ctx.fail(f"{w}.columns", f"not in catalog {catalog.id}: {', '.join(unknown)}")
        elif "columns" in m:
            raise ctx.fail(f"{w}.columns", "only an idle_days line names columns")
        lines.append(
            SiteLine(lid, measure, warn, veto, ctx.label(m["text"], f"{w}.text"), rules, columns)
        )
    return tuple(lines)


def _parse(
    source: str, doc: Mapping[str, Any], catalogs: Mapping[str, Catalog], path: str
) -> RuleSet:
    ctx = _Ctx(source)
    ctx.mapping(
        doc,
        "",
        {"id", "title", "source"},
        {"catalog", "catalog_from", "rules", "site", "warn_working_days"},
    )
    rs_id = ctx.code(doc["id"], "id", _ID)
    warn = ctx.count(doc.get("warn_working_days", 3), "warn_working_days", 0, 60)
    by_column: dict[str, list[Rule]]
    if "catalog" in doc:
        if "catalog_from" in doc:
            raise ctx.fail("catalog_from", "a rule set defines a catalog or uses one, not both")
        catalog, by_column = _catalog(ctx, rs_id, doc["catalog"], warn)
    else:
        if "catalog_from" not in doc:
            raise ctx.fail("", "give a catalog, or name one with catalog_from")
        ref = ctx.code(doc["catalog_from"], "catalog_from", _ID)
        if ref not in catalogs:
            raise ctx.fail("catalog_from", f"catalog {ref!r} is not loaded")
        catalog = catalogs[ref]
        by_column = {code: [] for code in catalog.columns}
    for i, raw in enumerate(_list(ctx, doc.get("rules", []), "rules")):
        w = f"rules[{i}]"
        rule = _rule(ctx, raw, w, rs_id, warn, with_columns=True)
        sel = raw["columns"]
        if sel == "all":
            targets = list(catalog.columns)
        else:
            targets = _list(ctx, sel, f"{w}.columns", non_empty=True)
            unknown = sorted({str(t) for t in targets} - set(catalog.columns))
            if unknown:
                raise ctx.fail(f"{w}.columns", f"not in catalog {catalog.id}: {', '.join(unknown)}")
        for t in targets:
            by_column[t].append(rule)
    # One id is one rule: events and site lines name rules by id alone.
    definitions: dict[str, Rule] = {}
    for code, rules in by_column.items():
        ids = [r.id for r in rules]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ctx.fail(f"column {code}", f"rule id {dup[0]!r} applies twice to the column")
        for r in rules:
            prev = definitions.setdefault(r.id, r)
            if prev.definition() != r.definition():
                raise ctx.fail(f"rule {r.id}", "one rule id is defined with different parameters")
    site = _site(ctx, doc["site"], catalog, set(definitions)) if "site" in doc else ()
    return RuleSet(
        id=rs_id,
        title=ctx.label(doc["title"], "title"),
        source=ctx.text(doc["source"], "source"),
        catalog=catalog,
        rules=tuple(definitions.values()),
        rules_by_column={c: tuple(rs) for c, rs in by_column.items()},
        site=site,
        path=path,
    )


def shipped_rule_sets() -> list[str]:
    return sorted(p.stem for p in DATA_DIR.glob("*.yaml"))


def load_rule_sets(refs: Sequence[str | Path] = DEFAULT_RULE_SETS) -> tuple[RuleSet, ...]:
    """Load rule sets by shipped name or path, in the order given; all share one catalog.

    A rule set that uses another's catalog (``catalog_from``) gets it from this list or, failing
    that, from the shipped rule set of that name.
    """
    if not refs:
        raise RuleSetError("rule sets", "", "choose at least one rule set")
    docs = [_read(r) for r in refs]
    catalogs: dict[str, Catalog] = {}
    loaded: dict[int, RuleSet] = {}
    # Catalog-defining rule sets first, so the others can refer to them whatever the order.
    order = sorted(range(len(docs)), key=lambda i: "catalog" not in docs[i][1])
    for i in order:
        source, doc = docs[i]
        wanted = doc.get("catalog_from")
        if (
            "catalog" not in doc
            and isinstance(wanted, str)
            and wanted not in catalogs
            and wanted != doc.get("id")
            and _ID.fullmatch(wanted)
        ):
            catalogs[wanted] = load_rule_sets([wanted])[0].catalog
        rs = _parse(source, doc, catalogs, str(refs[i]))
        if "catalog" in doc:
            catalogs[rs.catalog.id] = rs.catalog
        loaded[i] = rs
    result = tuple(loaded[i] for i in range(len(docs)))
    ids = [rs.id for rs in result]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise RuleSetError(dup[0], "", "rule set loaded twice")
    catalog_ids = {rs.catalog.id for rs in result}
    if len(catalog_ids) > 1:
        raise RuleSetError(
            ", ".join(ids),
            "",
            f"rule sets use different catalogs: {', '.join(sorted(catalog_ids))}",
        )
    return result


@functools.cache
def default_catalog() -> Catalog:
    """The catalog of the shipped ``wenan-2018`` rule set (what intake validates columns by)."""
    return load_rule_sets([CATALOG_RULE_SET])[0].catalog
