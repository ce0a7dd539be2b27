"""A year of the demo county's site before it joined gongkai, as a CMS would export it.

``history_items(today)`` is deterministic (a fixed seed; the same day gives the same items):
every item of the year before ``today`` in every column a unit shows by default. Most units
are diligent — each periodic column updated well inside its period. A few lapse: their
two-weekly columns (leaders' activities, work arrangements) go quiet for one to two months in
the first half of the year, and then, as if supervised, the unit puts them right and keeps
them up; one of those also lets a half-yearly column run past its six months, and one is
still behind on a two-weekly column when it joins. ``gongkai up --demo`` imports it
(``load_at_start``); ``gongkai demo history --out FILE`` writes it for ``gongkai import``.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import random
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from gongkai.calendar import local_date
from gongkai.eventlog import EventLog
from gongkai.rules import default_catalog, load_rule_sets
from gongkai_demo.county import DEMO_ACTOR, UNITS
from gongkai_intake.adapters.history_import import ImportReport, import_history, parse_history

#: The generator's seed: change it and every demo history changes.
SEED = 2018
#: Units whose columns go stale in the demo year (the rest are diligent).
LAPSING = ("market", "housing", "donghe-town", "beipo-township", "farm-committee")
#: The one unit that is still behind when it joins (its last lapse runs into today).
STILL_BEHIND = "beipo-township"
FIELDS = ("unit", "column", "title", "url", "online_at", "content_digest")


@functools.cache
def _period_days(column: str) -> int | None:
    """The shortest periodic deadline of the column under the notice's rules, in days."""
    rs = load_rule_sets(["wenan-2018"])[0]
    ref = date(2026, 1, 5)
    days = [
        (r.every.after(ref) - ref).days
        for r in rs.rules_for(column)
        if r.kind == "periodic" and r.every is not None
    ]
    return min(days) if days else None


def _times(rng: random.Random, start: date, end: date, period: int) -> list[date]:
    """Diligent publishing days in [start, end): gaps of 30-80 % of the period."""
    out: list[date] = []
    d = start + timedelta(days=rng.randint(0, max(1, period // 3)))
    while d < end:
        out.append(d)
        d += timedelta(days=max(1, round(period * rng.uniform(0.3, 0.8))))
    return out


def history_items(
    today: date, units: Iterable[str] | None = None, seed: int = SEED
) -> list[dict[str, Any]]:
    """Every item of the year before ``today`` (``today`` itself excluded), sorted by time.

    ``units``: only these units (tests); default every unit but the county office, whose own
    site sections the demo leaves to the live story.
    """
    catalog = default_catalog()
    start, end = today - timedelta(days=365), today
    wanted = set(units) if units is not None else None
    items: list[dict[str, Any]] = []
    for code, _name, kind, short in UNITS:
        if kind == "county_office" or (wanted is not None and code not in wanted):
            continue
        # One generator per unit: the items of a unit do not depend on which others are asked.
        urng = random.Random(f"{seed}:{code}")
        for column, col in catalog.columns.items():
            if not catalog.kept_by_default(column, kind):
                continue
            period = _period_days(column)
            if period is None:
                continue
            days = _times(urng, start, end, period)
            if code in LAPSING and period <= 14:
                # A lapse of one to two months in the first half of the year, then put right.
                gap_from = start + timedelta(days=urng.randint(60, 120))
                gap_to = gap_from + timedelta(days=urng.randint(30, 60))
                days = [d for d in days if not gap_from <= d < gap_to]
                if code == STILL_BEHIND and column == "work_arrangements":
                    days = [d for d in days if d < end - timedelta(days=40)]
            if code in LAPSING and period == 181 and column == "other_documents":
                days = [d for d in days if d < start + timedelta(days=30)] + [
                    start + timedelta(days=260)
                ]
            for n, d in enumerate(sorted(set(days)), 1):
                at = datetime.combine(d, time(urng.randint(9, 17), urng.choice((0, 15, 30, 45))))
                url = (
                    f"http://www.wenhe.gov.cn/zfxxgk/{code}/{column}/"
                    f"{d:%Y%m%d}_{n:03d}.html"
                )
                title = f"{short}{col.zh}（{d.month}月{d.day}日）"
                item = {
                    "unit": code,
                    "column": column,
                    "title": title,
                    "url": url,
                    # Beijing time without a zone, as CMS exports write it.
                    "online_at": at.isoformat(sep=" "),
                }
                if urng.random() < 0.5:
                    item["content_digest"] = hashlib.sha256(f"{title}\n{url}".encode()).hexdigest()
                items.append(item)
    items.sort(key=lambda i: (i["online_at"], i["unit"], i["column"], i["url"]))
    return items


def write_history(items: list[dict[str, Any]], path: Path) -> None:
    """JSON Lines (``.jsonl``) or CSV (anything else), the formats ``gongkai import`` reads."""
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        text = "".join(json.dumps(i, ensure_ascii=False, sort_keys=True) + "\n" for i in items)
        path.write_text(text, encoding="utf-8")
        return
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        for i in items:
            w.writerow(i)


async def import_demo_history(
    evlog: EventLog, now: datetime, units: Iterable[str] | None = None
) -> ImportReport:
    """Record the year before ``now``'s day as history, as ``gongkai import`` of the file
    ``history_items`` gives would (and as the operator)."""
    items = history_items(local_date(now), units)
    rows = parse_history("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), "jsonl")
    report = await import_history(
        evlog, rows, catalog=default_catalog(), actor=DEMO_ACTOR, now=now
    )
    if report.refused:
        first = report.refused[0]
        raise RuntimeError(f"demo history line {first.line}: {first.reason}")
    return report


__all__ = ["SEED", "history_items", "import_demo_history", "write_history"]
