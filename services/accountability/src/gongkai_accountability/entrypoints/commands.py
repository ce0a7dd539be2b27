"""``gongkai audit ...``: the inspectors' tools (their arguments are in ``cli``).

Each reads the log directly (``--nats-url``); ``rebuild`` also writes accountability's database.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from datetime import date
from typing import Any

from gongkai.calendar import today as local_today
from gongkai.eventlog import EventLog, local_keyring
from gongkai.runtime.settings import Settings
from gongkai.terminal import Progress, named, table
from gongkai.trust.checkpoint import accountability_keys, key_name, verifier_key
from gongkai.trust.keys import raw_public
from gongkai.vocabulary import (
    COLUMN_STATES,
    ROLES,
    SEVERITIES,
    VIOLATION_KINDS,
    name_of,
)
from gongkai_accountability.adapters.checkpoints import load_chain
from gongkai_accountability.adapters.log import (
    ProveError,
    ReadCounts,
    fold_log,
    prove_consistency,
    prove_inclusion,
    verified_events,
    verify_log,
)
from gongkai_accountability.domain.fold import RELEVANT
from gongkai_accountability.domain.report import ScoreTracker, as_of_view, unit_reports
from gongkai_accountability.domain.rows import Rows
from gongkai_accountability.domain.tables import ALERT, UNIT, day_of
from gongkai_accountability.entrypoints import report_html
from gongkai_accountability.entrypoints.console.views import is_blank
from gongkai_accountability.entrypoints.trail import column_name, unit_name
from gongkai_accountability.entrypoints.trail import run as _run


def cmd_rebuild(args: argparse.Namespace) -> int:
    # The database layer is imported by the one command that writes a database: the other
    # audit commands only read the log, and SQLAlchemy is a fifth of their start-up.
    from gongkai.projection import ProjectionStore, make_engine
    from gongkai_accountability.adapters.sql import PAGE_SIZE, AccountabilityProjection

    async def body(evlog: EventLog) -> int:
        url = args.db_url or Settings.from_env().db_url("accountability")
        projection = AccountabilityProjection()
        store = ProjectionStore(make_engine(url, page_size=PAGE_SIZE))
        store.reset(projection)
        with Progress("重建 rebuild", quiet=args.quiet) as progress:
            res = await fold_log(evlog, progress=progress, freeze=True)
        projection.write_all(store.engine, res.rows, res.last_seq)
        out = {
            "events": res.events,
            "last_seq": res.last_seq,
            "seconds": round(res.seconds, 3),
            "events_per_s": round(res.rate),
            "digest": store.digest(projection),
            "undecodable": res.undecodable,
            "rejected": res.rejected,
            "verified_by_checkpoint": res.by_checkpoint,
            "verified_by_signature": res.by_signature,
            "db_url": url,
        }
        if args.json:
            print(json.dumps(out))
        else:
            print(
                f"rebuilt accountability from {res.events:,} events in {res.seconds:.2f} s "
                f"({res.rate:,.0f} events/s)"
            )
            print(f"checkpoint {res.last_seq}  digest {out['digest']}")
            if res.by_checkpoint is None:
                print("not verified: no trust anchors (GONGKAI_KEYS_DIR or <data dir>/keys)")
            else:
                print(
                    f"verified: {res.by_checkpoint:,} events against signed checkpoints, "
                    f"{res.by_signature:,} by signature; {res.rejected:,} refused, not folded"
                )
        return 0

    return _run(args, body)


def cmd_as_of(args: argparse.Namespace) -> int:
    async def body(evlog: EventLog) -> int:
        res = await fold_log(evlog, until=args.date)
        if args.unit and res.rows.get(UNIT, args.unit) is None:
            # A typo must not read as a clean record ("violations (0)").
            print(f"gongkai audit as-of: no unit {args.unit!r} in the log", file=sys.stderr)
            return 1
        view = as_of_view(res.rows, args.date, args.unit)
        if args.json:
            print(json.dumps(view, ensure_ascii=False, indent=2))
            return 0
        print(f"截至 {args.date} 日终（北京时间） as of {args.date} (end of day, Asia/Shanghai)")
        blank = [c for c in view["stale_columns"] if is_blank(res.rows, c["unit"], c["column"])]
        stale = [c for c in view["stale_columns"] if c not in blank]
        for title, cols in (
            (f"{COLUMN_STATES['blank']} blank columns ({len(blank)})", blank),
            (f"{COLUMN_STATES['stale']} stale columns ({len(stale)})", stale),
        ):
            table(
                ["单位 unit", "栏目 column", "应更新日期 due", "逾期天数 days", "督办 case"],
                (
                    [
                        unit_name(res.rows, c["unit"]),
                        column_name(c["column"]),
                        c["due_date"],
                        c["days_stale"],
                        c["case"] or "-",
                    ]
                    for c in cols
                ),
                title=title,
            )
        table(
            ["案件 case", "单位 unit", "立案 opened", "整改期限 deadline"],
            (
                [
                    c["case_id"],
                    unit_name(res.rows, c.get("unit", "")),
                    c["opened_on"],
                    c["notice"]["deadline"] if c["notice"] else "未发督办通知 (not issued)",
                ]
                for c in view["open_cases"]
            ),
            title=f"督办案件 open supervision cases ({len(view['open_cases'])})",
        )
        _violations_table(res.rows, view["violations"])
        return 0

    return _run(args, body)


def _violations_table(rows: Rows, violations: list[dict[str, Any]]) -> None:
    table(
        [
            "日期 date", "类型 kind", "程度 severity", "单位 unit", "状态 state",
            "责任人 responsible",
        ],
        (
            [
                day_of(v["occurred_at"]),
                named(VIOLATION_KINDS.get(v["kind"]), v["kind"]),
                named(SEVERITIES.get(v["severity"]), v["severity"]),
                unit_name(rows, v["unit"]),
                "已整改(rectified)" if v.get("rectified") else "未整改(standing)",
                ", ".join(f"{r['person']} ({name_of(ROLES, r['role'])})" for r in v["responsible"]),
            ]
            for v in violations
        ),
        title=f"违规 violations ({len(violations)})",
    )


REPORT_FIELDS = (
    "rank",
    "unit",
    "score",
    "stale_columns",
    "stale_days",
    "late_publication",
    "stale_after_supervision",
    "published_without_review",
    "wrong_information",
    "serious",
    "cases_opened",
    "cases_outcomes",
    "findings",
)


#: The terminal table's short headings, by report field: every field but ``serious`` and
#: ``findings``, which the table has no room for.
TABLE_HEADS = {
    "rank": "排名 rank",
    "unit": "单位 unit",
    "score": "得分 score",
    "stale_columns": "未按时更新 stale",
    "stale_days": "逾期天数 days",
    "late_publication": "逾期公开 late",
    "stale_after_supervision": "督办后未更新 after-sv",
    "published_without_review": "未经审核 unreviewed",
    "wrong_information": "信息错误 wrong",
    "cases_opened": "督办 cases",
    "cases_outcomes": "办结 outcomes",
}


def _flat(r: dict[str, Any]) -> dict[str, Any]:
    out = {**r, **r["violations"]}
    out["cases_outcomes"] = " ".join(f"{k}:{v}" for k, v in sorted(r["cases_outcomes"].items()))
    return {k: out[k] for k in REPORT_FIELDS}


def cmd_report(args: argparse.Namespace) -> int:
    if args.start > args.end:
        print("gongkai audit report: --from is after --to", file=sys.stderr)
        return 2

    async def body(evlog: EventLog) -> int:
        # A period that runs past today counts stale days only up to today: the future has
        # not happened yet. (The command line is an entry point; it may read the wall clock.)
        today = local_today()
        end = max(args.start, min(args.end, today))
        history = None
        folded: Rows
        if args.format == "html":
            # One pass gives both the rows at the end and the score at each point on the way.
            tracker = await _fold_sampling(evlog, args.start, end)
            history = tracker.finish()
            folded = tracker.rows
        else:
            folded = (await fold_log(evlog, until=args.end)).rows
        reps = [r.as_dict() for r in unit_reports(folded, args.start, end, args.unit)]
        if args.unit and not reps:
            print(f"gongkai audit report: no unit {args.unit!r}", file=sys.stderr)
            return 1
        if args.format == "json":
            print(
                json.dumps(
                    {"from": args.start.isoformat(), "to": args.end.isoformat(), "units": reps},
                    ensure_ascii=False,
                    indent=2,
                )
            )
        elif args.format == "csv":
            buf = io.StringIO()
            w = csv.DictWriter(buf, fieldnames=REPORT_FIELDS)
            w.writeheader()
            w.writerows(_flat(r) for r in reps)
            print(buf.getvalue(), end="")
        elif args.format == "html":
            assert history is not None
            flat = [_flat(r) for r in reps]
            print(report_html.render(args.start, args.end, flat, REPORT_FIELDS, history))
        else:
            rows = [_flat(r) for r in reps]
            for r in rows:
                r["unit"] = unit_name(folded, r["unit"])
            table(
                list(TABLE_HEADS.values()),
                ([r[k] for k in TABLE_HEADS] for r in rows),
                title=f"政务公开考核 compliance {args.start} .. {args.end}",
            )
        return 0

    return _run(args, body)


async def _fold_sampling(evlog: EventLog, start: date, end: date) -> ScoreTracker:
    """Fold the log as of ``end`` (Shanghai), sampling every unit's score on the way."""
    tracker = ScoreTracker(start, end)
    chain = await load_chain(evlog) if evlog.keys is not None else None
    # Verified as the rebuild is: against the signed checkpoints, one signature at a time after.
    async for batch in verified_events(evlog, RELEVANT, ReadCounts(), chain):
        for seq, env in batch:
            tracker.apply(env, seq)
    return tracker


def cmd_verify(args: argparse.Namespace) -> int:
    async def body(evlog: EventLog) -> int:
        if evlog.keys is None:
            print(
                "gongkai audit verify: no trust anchors (GONGKAI_KEYS_DIR or <data dir>/keys): "
                "nothing to check signatures against",
                file=sys.stderr,
            )
            return 2
        res = await verify_log(evlog)
        for _, p in res.problems:
            print(f"PROBLEM  {p}")
        print(
            f"{res.last_seq:,} events; {res.checkpoints} signed checkpoints, events "
            f"1..{res.covered} checked against them, {res.signed:,} after the last one "
            "checked by signature"
        )
        if res.rejected:
            shown = ", ".join(str(s) for s in res.rejected[:20])
            more = " ..." if len(res.rejected) > 20 else ""
            print(f"rejected by a trust check, never applied: {shown}{more}")
        print(f"root {res.root} (size {res.last_seq})")
        first = res.first_difference
        if first is not None:
            print(f"first sequence that differs: {first}")
        print("log verified" if first is None else "log NOT verified")
        return 1 if first is not None else 0

    return _run(args, body)


def cmd_prove(args: argparse.Namespace) -> int:
    async def body(evlog: EventLog) -> int:
        if evlog.keys is None:
            print("gongkai audit prove: no trust anchors to check checkpoints against",
                  file=sys.stderr)
            return 2
        try:
            if args.consistency is not None:
                out = await prove_consistency(evlog, args.consistency, args.new_size)
            else:
                if not args.event_id:
                    print("gongkai audit prove: give an EVENT_ID or --consistency OLD_SIZE",
                          file=sys.stderr)
                    return 2
                out = await prove_inclusion(evlog, args.event_id)
        except ProveError as exc:
            print(f"gongkai audit prove: {exc}", file=sys.stderr)
            return 1
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return 0

    return _run(args, body)


def cmd_alerts(args: argparse.Namespace) -> int:
    """The integrity alerts on record: events in the log that no reader believed."""

    async def body(evlog: EventLog) -> int:
        res = await fold_log(evlog)
        alerts = sorted((a for _, a in res.rows.scan(ALERT)), key=lambda a: a.sequence)
        if args.check:
            alerts = [a for a in alerts if a.check == args.check]
        if args.json:
            print(json.dumps([a.encode() for a in alerts], ensure_ascii=False, indent=2))
        else:
            print(f"integrity alerts ({len(alerts)})")
            for a in alerts:
                claimed = a.claimed_type or "?"
                print(
                    f"  {a.sequence:>8}  {a.check:<14} {claimed:<18} {a.subject}\n"
                    f"            {a.detail}"
                )
        if res.rejected:
            # Refused while folding here and not (yet) on record as an alert: say so.
            print(f"{res.rejected} event(s) failed verification in this read", file=sys.stderr)
        return 0

    return _run(args, body)


def cmd_checkpoint_key(args: argparse.Namespace) -> int:
    """Accountability's checkpoint verifier key(s), from the local trust anchors."""
    ring = local_keyring()
    if ring is None:
        print("gongkai audit checkpoint-key: no trust anchors here", file=sys.stderr)
        return 1
    for k in accountability_keys(ring.trust):
        retired = f"  (retired {k.retired_after.isoformat()})" if k.retired_after else ""
        print(verifier_key(key_name(), raw_public(k.public)) + retired)
    return 0
