"""The generated tables of docs/events.md, from the registry the code runs on.

docs/events.md is hand-written except between markers::

    <!-- generated:aggregates -->  ...  <!-- /generated:aggregates -->

``render`` replaces what is between each pair with the table of that name and leaves every
other line as it is; ``gongkai events docs`` writes the result and a test fails on drift.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from gongkai.events.envelope import REGISTRY, Registry
from gongkai.events.schemas import meaning, schema_file


def _owner(event_type: str) -> str:
    # Which service decides a type is trust data (it signs it); imported late: trust imports
    # the events package.
    from gongkai.trust.owners import owner_of

    return owner_of(event_type) or "?"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def aggregates_table(registry: Registry = REGISTRY) -> str:
    by_aggregate: dict[str, list[str]] = {}
    for name, cls in sorted(registry.types().items()):
        by_aggregate.setdefault(cls.aggregate_type, []).append(name)
    declared = registry.aggregates()
    rows = [
        "| aggregate type | what one aggregate is | id | events | decided by |",
        "|---|---|---|---|---|",
    ]
    for aggregate in sorted(by_aggregate):
        info = declared.get(aggregate)
        events = by_aggregate[aggregate]
        owners = sorted({_owner(e) for e in events})
        rows.append(
            f"| `{aggregate}` | {_cell(info.about) if info else '?'} "
            f"| {_cell(info.id_shape) if info else '?'} | {', '.join(events)} "
            f"| {', '.join(owners)} |"
        )
    return "\n".join(rows)


def semantics_table(registry: Registry = REGISTRY) -> str:
    rows = [
        "| event | aggregate | what it means | when it is recorded | by | schemas |",
        "|---|---|---|---|---|---|",
    ]
    for name, cls in sorted(registry.types().items()):
        files = ", ".join(
            f"[v{v}](schemas/{schema_file(name, v)})" for v in registry.versions(name)
        )
        rows.append(
            f"| `{name}` | `{cls.aggregate_type}` | {_cell(meaning(cls))} "
            f"| {_cell(cls.emitted_when) or '?'} | {_owner(name)} | {files} |"
        )
    return "\n".join(rows)


def upcasts_table(registry: Registry = REGISTRY) -> str:
    rows = ["| event | from | to | apply to `payload`, in order |", "|---|---|---|---|"]
    for name, cls in sorted(registry.types().items()):
        for version in range(1, cls.schema_version):
            steps = registry.upcast_steps(name, version) or ()
            said = "; ".join(
                s.sentence() + (f" ({_cell(s.why)})" if s.why else "") for s in steps
            )
            rows.append(f"| `{name}` | v{version} | v{version + 1} | {said} |")
    return "\n".join(rows)


TABLES: dict[str, Callable[[], str]] = {
    "aggregates": aggregates_table,
    "semantics": semantics_table,
    "upcasts": upcasts_table,
}

_BLOCK = re.compile(
    r"(<!-- generated:(?P<name>[a-z]+) -->\n)(?P<body>.*?)(<!-- /generated:(?P=name) -->)",
    re.DOTALL,
)


def render(text: str) -> str:
    """``text`` with every generated block replaced by its current table.

    A marker naming no table is an error, and so is a table without its markers: a table
    left out of the page would silently stop being published.
    """
    seen: set[str] = set()

    def fill(m: re.Match[str]) -> str:
        name = m.group("name")
        if name not in TABLES:
            raise ValueError(f"docs/events.md: no generated table named {name!r}")
        seen.add(name)
        note = "<!-- Generated from the event registry by `make schemas`: edit the contracts. -->"
        return f"{m.group(1)}{note}\n{TABLES[name]()}\n{m.group(4)}"

    out = _BLOCK.sub(fill, text)
    missing = set(TABLES) - seen
    if missing:
        raise ValueError(f"docs/events.md lacks the markers of {sorted(missing)}")
    return out
