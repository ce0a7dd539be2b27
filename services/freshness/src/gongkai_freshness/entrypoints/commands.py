"""``gongkai freshness`` — status from the log alone, and rule-set checks (arguments: ``cli``).

``status`` replays the event log into a fresh register (no service needs to run, only NATS)
and evaluates it as of a date: an inspector's "what stood on 2026-03-01". Events count when
their business time falls on or before that date (Asia/Shanghai).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from dataclasses import asdict
from datetime import date
from pathlib import Path

import nats.errors

from gongkai.calendar import CalendarDataError, WorkingCalendar, local_date, today
from gongkai.eventlog import EventLogError
from gongkai.rules import RuleSetError, load_rule_sets
from gongkai.runtime.settings import Settings
from gongkai.terminal import named, table
from gongkai.trust import credentials
from gongkai.vocabulary import COLUMN_STATES
from gongkai_freshness.adapters.config import ConfigError, FreshnessConfig, with_warning
from gongkai_freshness.adapters.log import fold_log
from gongkai_freshness.adapters.register import ColumnRegister
from gongkai_freshness.domain.report import ColumnStatus
from gongkai_freshness.entrypoints.cli import STATES

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class _Fail(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _parse_date(text: str) -> date:
    if _ISO_DATE.fullmatch(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    raise _Fail(f"invalid date {text!r} (expected YYYY-MM-DD)", 2)


def _fmt_row(r: ColumnStatus, units: dict[str, str], columns: dict[str, str]) -> list[str]:
    if r.state == "hidden":
        note = f"{r.hidden_by} 隐藏 (hidden by {r.hidden_by})"
    elif r.state == "stale":
        days = r.overdue_days
        note = f"{r.rule}, 逾期 {days} 天 ({days} day{'' if days == 1 else 's'} overdue)"
    elif r.state == "blank":
        note = f"自 {r.due_date} 起无信息 (no item)" if r.due_date else "从未发布 (no item)"
    elif r.rule:
        note = r.rule
    else:
        note = ""
    if r.provisional:
        note += " (provisional: no official calendar)"
    last = local_date(r.last_publication).isoformat() if r.last_publication else ""
    return [
        named(units.get(r.unit), r.unit),
        named(columns.get(r.column), r.column),
        r.rule_set,
        named(COLUMN_STATES.get(r.state), r.state),
        r.due_date.isoformat() if r.due_date else "",
        last,
        note,
    ]


async def _status(args: argparse.Namespace) -> int:
    as_of = _parse_date(args.as_of) if args.as_of else today()
    try:
        cfg = FreshnessConfig.from_env()
        refs = tuple(args.rule_set) if args.rule_set else cfg.rule_sets
        rule_sets = with_warning(load_rule_sets(refs), cfg.warn_working_days)
        calendar = WorkingCalendar.default()
    except (ConfigError, RuleSetError, CalendarDataError) as exc:
        raise _Fail(str(exc), 1) from None
    env = Settings.from_env()
    url = args.nats_url or env.nats_url or "nats://127.0.0.1:4222"
    try:
        evlog = await credentials.connect_tool(url, credentials.for_tool(args, "inspector"))
    except Exception as exc:  # noqa: BLE001 - any connection failure is one line
        raise _Fail(f"cannot connect to NATS at {url}: {exc or type(exc).__name__}", 1) from None
    register = ColumnRegister(rule_sets, calendar)
    try:
        await fold_log(evlog, register, until=as_of)
    except (EventLogError, nats.errors.Error) as exc:
        # No log there (a server without the stream), or the server went away mid-read.
        raise _Fail(f"cannot read the log at {url}: {exc}", 1) from None
    finally:
        await evlog.close()
    if args.unit and not register.has_unit(args.unit):
        raise _Fail(f"no unit {args.unit!r} in the log as of {as_of}", 1)
    rows = register.status_table(as_of, unit=args.unit)
    if args.state:
        rows = [r for r in rows if r.state == args.state]
    if args.json:
        out = {"as_of": as_of.isoformat(), "columns": [asdict(r) for r in rows]}
        print(json.dumps(out, ensure_ascii=False, default=str, indent=1))
        return 0
    units = {code: info.name for code, info in register.state.units.items()}
    columns = {code: col.zh for code, col in register.rule_sets[0].catalog.columns.items()}
    print(f"截至 {as_of.isoformat()} 日终（北京时间）, as of {as_of.isoformat()} (Asia/Shanghai), "
          f"from the log at {url}")
    table(
        ["单位 unit", "栏目 column", "规则集 rule set", "状态 state", "应更新日期 due",
         "最近发布 last item", "说明 note"],
        [_fmt_row(r, units, columns) for r in rows],
    )
    counts = {s: sum(1 for r in rows if r.state == s) for s in STATES}
    print("，".join(f"{COLUMN_STATES[s]}({s}) {n}" for s, n in counts.items()))
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_status(args))
    except _Fail as exc:
        print(f"gongkai freshness status: error: {exc}", file=sys.stderr)
        return exc.code


def _cmd_rules(args: argparse.Namespace) -> int:
    refs: list[str | Path] = list(args.ref) or list(FreshnessConfig.from_env().rule_sets)
    try:
        rule_sets = load_rule_sets(refs)
    except RuleSetError as exc:
        print(f"gongkai freshness rules: error: {exc}", file=sys.stderr)
        return 1
    catalog = rule_sets[0].catalog
    print(f"catalog {catalog.id}: {len(catalog.columns)} columns in {len(catalog.groups)} groups")
    for rs in rule_sets:
        print(f"\n{rs.id} — {rs.title.en}")
        for group in catalog.groups:
            for code in group.columns:
                rules = rs.rules_for(code)
                if not rules:
                    continue
                col = catalog.columns[code]
                desc = "; ".join(f"{r.id}: {r.describe()}" for r in rules)
                print(f"  {group.code}/{code} ({col.zh}): {desc}")
        for line in rs.site:
            print(f"  site line {line.id}: {line.text.en} (warn at {line.warn})")
    return 0
