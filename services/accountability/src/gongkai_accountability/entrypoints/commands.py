"""``gongkai audit ...``: the inspectors' tools (their arguments are in ``cli``).

Each reads the log directly (``--nats-url``); ``rebuild`` also writes accountability's database.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from gongkai.calendar import today as local_today
from gongkai.eventlog import EventLog, local_keyring
from gongkai.projection import ProjectionStore, make_engine
from gongkai.runtime.settings import Settings
from gongkai.trust import credentials
from gongkai.trust.checkpoint import accountability_keys, key_name, verifier_key
from gongkai.trust.keys import raw_public
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
from gongkai_accountability.adapters.sql import AccountabilityProjection
from gongkai_accountability.domain.fold import RELEVANT
from gongkai_accountability.domain.report import ScoreTracker, as_of_view, unit_reports
from gongkai_accountability.domain.rows import Rows
from gongkai_accountability.entrypoints import report_html


def _url(args: argparse.Namespace) -> str:
    return args.nats_url or Settings.from_env().nats_url or "nats://127.0.0.1:4222"


def _run(args: argparse.Namespace, body: Callable[[EventLog], Awaitable[int]]) -> int:
    async def main() -> int:
        url = _url(args)
        try:
            # read-only: the inspector's credentials (--creds, $GONGKAI_NATS_CREDS, a password
            # user, or <data-dir>/credentials/inspector.nk)
            evlog = await credentials.connect_tool(url, credentials.for_tool(args, "inspector"))
        except Exception as exc:  # noqa: BLE001 - any connection failure is one message
            print(f"gongkai audit: cannot connect to NATS at {url}: {exc}", file=sys.stderr)
            return 1
        try:
            return await body(evlog)
        finally:
            await evlog.close()

    return asyncio.run(main())


def _progress(done: int, total: int) -> None:
    width = 30
    filled = width * done // total if total else width
    print(
        f"\r  [{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} events",
        end="",
        file=sys.stderr,
        flush=True,
    )


def cmd_trail(args: argparse.Namespace) -> int:
    async def body(evlog: EventLog) -> int:
        res = await fold_log(evlog)
        post = res.rows.get("post", args.post)
        if post is None:
            print(f"gongkai audit trail: no post {args.post!r} in the log", file=sys.stderr)
            return 1
        if args.json:
            print(json.dumps(post, ensure_ascii=False, indent=2))
            return 0
        print(
            f"post {post['post_id']}  unit {post['unit']}  column {post['column']}  {post['title']}"
        )
        for s in post["trail"]:
            extra = " ".join(
                f"{k}={s[k]}"
                for k in ("decision", "opinion", "publication_id", "reason", "kind")
                if k in s
            )
            digest = s.get("digest", "")[:12]
            print(
                f"  {s['seq']:>8}  {s['at'][:19]}  {s['what']:<18} "
                f"{s['person']} ({s['role']}, {s['unit']})  {digest}  {extra}".rstrip()
            )
        return 0

    return _run(args, body)


def cmd_rebuild(args: argparse.Namespace) -> int:
    async def body(evlog: EventLog) -> int:
        url = args.db_url or Settings.from_env().db_url("accountability")
        projection = AccountabilityProjection()
        store = ProjectionStore(make_engine(url))
        store.reset(projection)
        res = await fold_log(evlog, progress=None if args.quiet else _progress)
        if not args.quiet:
            print(file=sys.stderr)
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
        if args.unit and res.rows.get("unit", args.unit) is None:
            # A typo must not read as a clean record ("violations (0)").
            print(f"gongkai audit as-of: no unit {args.unit!r} in the log", file=sys.stderr)
            return 1
        view = as_of_view(res.rows, args.date, args.unit)
        if args.json:
            print(json.dumps(view, ensure_ascii=False, indent=2))
            return 0
        print(f"as of {args.date} (end of day, Asia/Shanghai)")
        print(f"stale columns ({len(view['stale_columns'])}):")
        for c in view["stale_columns"]:
            print(
                f"  {c['unit']:<24} {c['column']:<28} due {c['due_date']}  "
                f"{c['days_stale']:>4} days  case {c['case'] or '-'}"
            )
        print(f"open supervision cases ({len(view['open_cases'])}):")
        for c in view["open_cases"]:
            n = c["notice"]
            deadline = n["deadline"] if n else "not issued"
            print(f"  {c['case_id']:<40} opened {c['opened_on']}  deadline {deadline}")
        print(f"violations ({len(view['violations'])}):")
        for v in view["violations"]:
            _print_violation(v)
        return 0

    return _run(args, body)


def _print_violation(v: dict[str, Any]) -> None:
    who = ", ".join(f"{r['person']} ({r['role']})" for r in v["responsible"])
    state = "rectified" if v.get("rectified") else "standing"
    print(
        f"  {v['occurred_at'][:10]}  {v['kind']:<26} {v['severity']:<7} {v['unit']:<20} "
        f"{state:<9} {who}"
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
    "rank": "rank",
    "unit": "unit",
    "score": "score",
    "stale_columns": "stale",
    "stale_days": "days",
    "late_publication": "late",
    "stale_after_supervision": "after-sv",
    "published_without_review": "unreviewed",
    "wrong_information": "wrong",
    "cases_opened": "cases",
    "cases_outcomes": "outcomes",
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
            heads = tuple(TABLE_HEADS.values())
            keys = tuple(TABLE_HEADS)
            widths = [
                max(len(h), *(len(str(r[k])) for r in rows)) if rows else len(h)
                for h, k in zip(heads, keys, strict=True)
            ]
            print(f"compliance {args.start} .. {args.end}")
            print("  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)))
            for r in rows:
                print("  ".join(str(r[k]).ljust(w) for k, w in zip(keys, widths, strict=True)))
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
        alerts = sorted(
            (row for _, row in res.rows.scan("alert")), key=lambda a: int(a["sequence"])
        )
        if args.check:
            alerts = [a for a in alerts if a["check"] == args.check]
        if args.json:
            print(json.dumps(alerts, ensure_ascii=False, indent=2))
        else:
            print(f"integrity alerts ({len(alerts)})")
            for a in alerts:
                claimed = a.get("claimed_type") or "?"
                print(
                    f"  {a['sequence']:>8}  {a['check']:<14} {claimed:<18} {a['subject']}\n"
                    f"            {a['detail']}"
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
