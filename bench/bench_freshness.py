"""freshness: full evaluation of a county and the cost of one incoming event.

A synthetic county of 1,000 units × 35 columns (Attachment 2's 30 plus 5 more of the same
shape) lives through a year of history (publications, posts going online in time or late,
leadership changes, hidden columns, removals), with a clock tick every month recording the
transitions. Then, in-process (the domain alone, no NATS):

- replay: what a restart costs per event: decoding (a sample) and folding into the register;
- full evaluation: ``decide_all`` over every column, cold (deadlines computed) and warm (the
  next day), plus the status table and the site-risk lines;
- per event: an incoming publication or post decoded from its JSON bytes, folded in, its
  column decided, and the transitions folded back — what the service does for each event.

Targets (issue 5): full evaluation under 1 s, under 1 ms per event.

    python -m bench.bench_freshness [--units 1000] [--columns 35] [--events 5000]
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import statistics
import time
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any

from bench.common import Figure, Timer, table
from gongkai.calendar import SHANGHAI, WorkingCalendar
from gongkai.events import HDR_TYPE, HDR_VERSION, REGISTRY, Actor, Envelope, EventPayload, new_event
from gongkai.events.contracts.freshness import ColumnHidden
from gongkai.events.contracts.intake import (
    LeadershipDutiesChanged,
    PostPublished,
    PostSubmitted,
    PublicationRemoved,
    UnitRegistered,
)
from gongkai.rules import Column, Group, Rule, RuleSet, load_rule_sets
from gongkai_freshness.adapters.log import FRESHNESS_ACTOR
from gongkai_freshness.adapters.register import ColumnRegister

ACTOR = Actor(person="bench", role="system", unit="system")
START = date(2025, 3, 3)
AS_OF = date(2026, 3, 2)
DIGEST = "d" * 64


def widen(rule_sets: tuple[RuleSet, ...], extra: int) -> tuple[RuleSet, ...]:
    """The shipped rule sets with ``extra`` more columns shaped like the enforcement rows."""
    if extra <= 0:
        return rule_sets
    wenan = rule_sets[0]
    cat = wenan.catalog
    template = cat.columns["administrative_licensing"]
    codes = [f"extra_{i}" for i in range(1, extra + 1)]
    columns = dict(cat.columns)
    for code in codes:
        columns[code] = replace(template, code=code, zh=f"栏目{code[-1]}", group="extra")
    catalog = replace(
        cat,
        columns=columns,
        groups=(*cat.groups, Group("extra", "其他栏目", "Extra", tuple(codes))),
    )
    out = []
    for rs in rule_sets:
        by_column = dict(rs.rules_by_column)
        for code in codes:
            by_column[code] = rs.rules_for("administrative_licensing")
        out.append(replace(rs, catalog=catalog, rules_by_column=by_column))
    return tuple(out)


def at(d: date, hour: int = 10) -> datetime:
    return datetime.combine(d, dtime(hour), SHANGHAI).astimezone(UTC)


class History:
    """A year of a county's life: compact facts in time order, made into events when folded.

    Facts are small tuples (day, n, kind, *args) so a county-year fits in memory; ``event``
    builds the envelope the log would hold.
    """

    def __init__(self, units: int, columns: list[Column], rules: RuleSet, seed: int) -> None:
        self.rng = random.Random(seed)
        self.facts: list[tuple[Any, ...]] = []
        self.n = 0
        self.kinds: dict[str, str] = {}
        for i in range(units):
            code = f"u{i:04d}"
            kind = (
                "county_office"
                if i == 0
                else "department"
                if i <= units * 0.65
                else "township"
                if i <= units * 0.9
                else "committee"
            )
            self.kinds[code] = kind
            self.add(START, "unit", code, kind)
            for col in columns:
                if not col.exists_for(kind) or col.hidden_by_default:
                    continue
                self.column(code, col, rules.rules_for(col.code))
            changed = START + timedelta(days=self.rng.randrange(30, 330))
            self.add(changed, "leaders", code)
            self.publish(
                code, "leaders_duties", changed + timedelta(days=self.rng.randrange(1, 20))
            )
        self.facts.sort(key=lambda f: (f[0], f[1]))

    def add(self, day: date, kind: str, *args: Any) -> None:
        self.n += 1
        self.facts.append((day, self.n, kind, *args))

    def publish(self, unit: str, column: str, day: date, post: str | None = None) -> str:
        pid = f"pub{self.n}"
        self.add(day, "pub", unit, column, pid, post)
        return pid

    def column(self, unit: str, col: Column, rules: tuple[Rule, ...]) -> None:
        rng = self.rng
        if rng.random() < 0.05:
            self.add(START + timedelta(days=rng.randrange(0, 60)), "hide", unit, col.code)
            return
        periodic = [r.every for r in rules if r.kind == "periodic" and r.every is not None]
        fortnightly = any(p.unit == "weeks" for p in periodic)
        triggered = any(r.kind == "triggered" for r in rules)
        day = START - timedelta(days=rng.randrange(0, 30))
        gap = (7, 17) if fortnightly else (40, 200)
        while True:
            day += timedelta(days=rng.randrange(*gap))
            if day > AS_OF:
                break
            pid = self.publish(unit, col.code, day)
            if rng.random() < 0.01:
                self.add(day + timedelta(days=rng.randrange(1, 60)), "remove", unit, col.code, pid)
        if triggered:
            day = START
            while True:
                day += timedelta(days=rng.randrange(20, 90))
                if day > AS_OF:
                    break
                post = f"post{self.n}"
                self.add(day, "post", unit, col.code, post)
                if rng.random() < 0.97:
                    self.publish(unit, col.code, day + timedelta(days=rng.randrange(1, 35)), post)

    def event(self, fact: tuple[Any, ...]) -> Envelope[Any]:
        day, n, kind, *args = fact
        payload: EventPayload
        if kind == "unit":
            code, ukind = args
            payload = UnitRegistered(
                code=code, name=code, kind=ukind, contact_name="x", contact_mobile="19900000000"
            )
            agg = code
        elif kind == "leaders":
            payload = LeadershipDutiesChanged(unit=args[0], changed_on=day, summary="x")
            agg = args[0]
        elif kind == "pub":
            unit, column, pid, post = args
            payload = PostPublished(
                publication_id=pid,
                post_id=post,
                unit=unit,
                column=column,
                url=f"https://example.gov.cn/{pid}",
                online_at=at(day),
                content_digest=DIGEST,
            )
            agg = pid
        elif kind == "post":
            unit, column, post = args
            payload = PostSubmitted(
                unit=unit,
                column=column,
                title="t",
                body="b",
                origin="produced",
                channel="website",
                information_date=day,
                content_digest=DIGEST,
            )
            agg = post
        elif kind == "hide":
            unit, column = args
            payload = ColumnHidden(unit=unit, column=column, reason="not our function")
            agg = f"{unit}--{column}"
        else:
            unit, column, pid = args
            payload = PublicationRemoved(
                publication_id=pid, unit=unit, column=column, removed_at=at(day), reason="x"
            )
            agg = pid
        return new_event(
            payload, aggregate_id=agg, actor=ACTOR, command_id=f"h{n}", recorded_at=at(day)
        )


def record(reg: ColumnRegister, day: date, seq: int) -> int:
    """A clock tick: decide everything and fold the transitions back in, as the service does."""
    transitions = reg.decide_all(day)
    for t in transitions:
        seq += 1
        env = new_event(
            t.payload,
            aggregate_id=t.aggregate_id,
            actor=FRESHNESS_ACTOR,
            command_id=t.command_id,
            recorded_at=at(day, 1),
        )
        reg.fold(env, seq)
    return len(transitions)


def incoming(units: list[str], n: int, seed: int) -> list[tuple[bytes, dict[str, str]]]:
    """New facts on the evaluation day, as the bytes and headers read from the stream."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        unit = rng.choice(units)
        column = rng.choice(
            ["leaders_activities", "normative_documents", "special_funds", "chronicle"]
        )
        payload: EventPayload
        if i % 2:
            payload = PostPublished(
                publication_id=f"new{i}",
                post_id=None,
                unit=unit,
                column=column,
                url=f"https://example.gov.cn/new{i}",
                online_at=at(AS_OF),
                content_digest=DIGEST,
            )
        else:
            payload = PostSubmitted(
                unit=unit,
                column=column,
                title="t",
                body="b",
                origin="produced",
                channel="website",
                information_date=AS_OF - timedelta(days=rng.randrange(0, 40)),
                content_digest=DIGEST,
            )
        env = new_event(
            payload, aggregate_id=f"new{i}", actor=ACTOR, command_id=f"in{i}", recorded_at=at(AS_OF)
        )
        out.append((env.to_json(), {HDR_TYPE: env.type, HDR_VERSION: str(env.schema_version)}))
    return out


def main(argv: list[str] | None = None) -> list[Figure]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--units", type=int, default=1000)
    ap.add_argument("--columns", type=int, default=35, help="30 from Attachment 2, plus more")
    ap.add_argument("--events", type=int, default=5000, help="incoming events to time")
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args(argv)

    calendar = WorkingCalendar.default()
    rule_sets = widen(load_rule_sets(), args.columns - 30)
    catalog = rule_sets[0].catalog
    columns = list(catalog.columns.values())[: args.columns]

    with Timer() as t_gen:
        history = History(args.units, columns, rule_sets[0], args.seed)
    reg = ColumnRegister(rule_sets, calendar)
    transitions = ticks = seq = 0
    fold_s = 0.0
    sample: list[tuple[bytes, dict[str, str]]] = []
    next_tick = START
    with Timer() as t_year:
        for fact in history.facts:
            while fact[0] > next_tick:
                k = record(reg, next_tick, seq)
                transitions += k
                seq += k
                ticks += 1
                next_tick += timedelta(days=30)
            env = history.event(fact)
            if len(sample) < 20000 and fact[1] % 7 == 0:
                sample.append(
                    (env.to_json(), {HDR_TYPE: env.type, HDR_VERSION: str(env.schema_version)})
                )
            seq += 1
            t0 = time.perf_counter()
            reg.fold(env, seq)
            fold_s += time.perf_counter() - t0
        transitions += record(reg, AS_OF - timedelta(days=1), seq)
    facts = len(history.facts)
    del history.facts
    gc.collect()
    print(
        f"county: {args.units} units x {len(catalog.columns)} columns, {len(rule_sets)} rule sets; "
        f"{facts:,} facts over a year and {transitions:,} transitions from {ticks + 1} monthly "
        f"ticks (generated in {t_gen.seconds:.1f} s, lived in {t_year.seconds:.1f} s)"
    )
    with Timer() as t_decode:
        for data, hdr in sample:
            REGISTRY.decode(data, hdr)

    rows: list[tuple[str, ...]] = []
    rows.append(
        (
            "replay: decode JSON -> envelope (sample)",
            f"{len(sample):,} events",
            f"{t_decode.seconds:.2f} s",
            f"{len(sample) / t_decode.seconds:,.0f} ev/s",
        )
    )
    rows.append(
        (
            "replay: fold into the register",
            f"{facts:,} facts",
            f"{fold_s:.2f} s",
            f"{facts / fold_s:,.0f} ev/s",
        )
    )

    cells = sum(1 for c in reg.state.all_columns() if c.unit in reg.state.units)
    reg.schedules.clear()  # as after a restart: every deadline computed afresh
    gc.collect()
    with Timer() as t_cold:
        owed = reg.decide_all(AS_OF)
    rows.append(
        (
            "full evaluation, cold (deadlines computed)",
            f"{cells:,} columns",
            f"{t_cold.seconds * 1000:.0f} ms",
            f"{len(owed)} transitions owed",
        )
    )
    for env in [
        new_event(
            t.payload,
            aggregate_id=t.aggregate_id,
            actor=FRESHNESS_ACTOR,
            command_id=t.command_id,
            recorded_at=at(AS_OF, 1),
        )
        for t in owed
    ]:
        reg.fold(env, 0)
    warm = []
    for k in range(3):
        with Timer() as t:
            owed = reg.decide_all(AS_OF + timedelta(days=1 + k))
        warm.append(t.seconds)
    rows.append(
        (
            "full evaluation, warm (next days)",
            f"{cells:,} columns",
            f"{min(warm) * 1000:.0f} ms",
            f"best of 3; {len(owed)} owed",
        )
    )
    with Timer() as t_status:
        table_rows = reg.status_table(AS_OF)
    rows.append(
        (
            "status table (unit x column x rule set)",
            f"{len(table_rows):,} rows",
            f"{t_status.seconds * 1000:.0f} ms",
            "",
        )
    )
    national = next(rs for rs in reg.rule_sets if rs.site)
    with Timer() as t_risk:
        risk = reg.site_risk(national, AS_OF)
    rows.append(
        (
            "site risk (national lines)",
            f"{len(risk.lines)} lines",
            f"{t_risk.seconds * 1000:.0f} ms",
            f"level {risk.level}",
        )
    )

    # Per incoming event: bytes -> envelope -> evolve -> decide its columns -> fold transitions.
    feed = incoming(list(history.kinds), args.events, args.seed + 1)
    per_event: list[float] = []
    domain_only: list[float] = []
    recorded = 0
    for data, hdr in feed:
        t0 = time.perf_counter()
        env = REGISTRY.decode(data, hdr)
        t1 = time.perf_counter()
        seq += 1
        touched = reg.fold(env, seq)
        transitions_now = reg.decide(touched, AS_OF)
        for tr in transitions_now:
            seq += 1
            reg.fold(
                new_event(
                    tr.payload,
                    aggregate_id=tr.aggregate_id,
                    actor=FRESHNESS_ACTOR,
                    command_id=tr.command_id,
                    recorded_at=at(AS_OF, 1),
                ),
                seq,
            )
        t2 = time.perf_counter()
        recorded += len(transitions_now)
        per_event.append(t2 - t0)
        domain_only.append(t2 - t1)
    q = statistics.quantiles(per_event, n=100)
    rows.append(
        (
            "per incoming event (decode+fold+decide+record)",
            f"{len(feed):,} events",
            f"{statistics.mean(per_event) * 1e6:.0f} µs mean",
            f"p50 {q[49] * 1e6:.0f} µs, p99 {q[98] * 1e6:.0f} µs; {recorded} transitions",
        )
    )
    rows.append(
        (
            "per incoming event, without JSON decode",
            f"{len(feed):,} events",
            f"{statistics.mean(domain_only) * 1e6:.0f} µs mean",
            "",
        )
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(table(rows, ("what", "size", "time", "notes")))
    print(f"peak RSS of this process (history + register): {peak:.0f} MB")
    best_full = min(warm)
    print(
        f"targets: full evaluation < 1 s: cold {t_cold.seconds:.2f} s, warm {best_full:.2f} s; "
        f"< 1 ms per event: {statistics.mean(per_event) * 1000:.3f} ms mean"
    )
    return [
        Figure(
            f"freshness: full evaluation, cold, {cells:,} columns", t_cold.seconds, "s", target=1.0
        ),
        Figure(f"freshness: full evaluation, warm, {cells:,} columns", best_full, "s", target=1.0),
        Figure(
            "freshness: incoming event (decode+fold+decide)",
            1 / statistics.mean(per_event),
            "events/s",
        ),
    ]


if __name__ == "__main__":
    main()
