"""History import without NATS: the import decider (given/when/then), the export parser's
bad rows, freshness's episodes of the history and the as-of view that counts them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from gongkai.calendar import SHANGHAI
from gongkai.events.contracts.freshness import ColumnWasStale
from gongkai.events.contracts.intake import PublicationImported
from gongkai.refusal import Refusal
from gongkai.rules import default_catalog, load_rule_sets
from gongkai_accountability.domain.report import as_of_view
from gongkai_accountability.domain.rows import MemoryRows
from gongkai_accountability.domain.tables import COLUMN
from gongkai_accountability.domain.tables import UNIT as UNITS
from gongkai_freshness.domain.evaluation import decide_history
from gongkai_freshness.domain.state import ColumnState, UnitInfo
from gongkai_intake.adapters.history_import import Row, RowError, parse_history
from gongkai_intake.domain import history as h

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
CATALOG = default_catalog()


def item(**over: Any) -> h.ImportPublication:
    base: dict[str, Any] = {
        "unit": "finance",
        "column": "work_arrangements",
        "title": "财政局工作部署（1月5日）",
        "url": "http://www.wenhe.gov.cn/zfxxgk/finance/work_arrangements/20260105_001.html",
        "online_at": datetime(2026, 1, 5, 9, 30, tzinfo=SHANGHAI),
    }
    return h.ImportPublication(**{**base, **over})


@dataclass(frozen=True)
class Case:
    name: str
    given: h.ImportedState
    when: h.ImportPublication
    unit_kind: str | None
    then: str  # "recorded", "nothing", or the refused field


CASES = [
    Case("a new item is recorded as history", h.ImportedState(), item(), "department",
         "recorded"),
    Case("the same item again records nothing", h.ImportedState(exists=True), item(),
         "department", "nothing"),
    Case("an unknown unit is refused", h.ImportedState(), item(unit="nosuch"), None, "unit"),
    Case("an unknown column is refused", h.ImportedState(), item(column="gossip"),
         "department", "column"),
    Case("a column the unit's kind has not is refused", h.ImportedState(),
         item(column="public_resources"), "township", "column"),
    Case("a blank title is refused", h.ImportedState(), item(title="  "), "department",
         "title"),
    Case("a relative URL is refused", h.ImportedState(), item(url="/zfxxgk/1.html"),
         "department", "url"),
    Case("a time after now is refused", h.ImportedState(),
         item(online_at=NOW + timedelta(days=1)), "department", "online_at"),
    Case("a hidden-by-default column still records (it was online)", h.ImportedState(),
         item(column="housing_security"), "department", "recorded"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_import_decider(case: Case) -> None:
    ctx = h.Context(now=NOW, unit_kind=case.unit_kind, catalog=CATALOG)
    if case.then not in ("recorded", "nothing"):
        with pytest.raises(Refusal) as refused:
            h.import_publication(case.when, case.given, ctx)
        assert refused.value.field == case.then
        return
    events = h.import_publication(case.when, case.given, ctx)
    if case.then == "nothing":
        assert events == []
        return
    [e] = events
    assert isinstance(e, PublicationImported)
    assert e.publication_id == h.publication_id(case.when)
    assert e.online_at == case.when.online_at and e.title == case.when.title


def test_an_item_keeps_its_id_whatever_its_title_or_zone() -> None:
    a = item()
    b = item(title="财政局工作部署（更正）", online_at=a.online_at.astimezone(UTC))
    assert h.publication_id(a) == h.publication_id(b)
    assert h.command_id(a) == h.command_id(b)
    assert h.publication_id(a) != h.publication_id(item(url=a.url + "?v=2"))


def test_parser_reports_each_bad_row_by_line_and_reads_the_rest() -> None:
    csv_text = (
        "\ufeffunit,column,title,url,online_at,content_digest\n"
        "finance,work_arrangements,部署一,http://x.gov.cn/1.html,2026-01-05 09:30,\n"
        "finance,work_arrangements,,http://x.gov.cn/2.html,2026-01-06,\n"
        "finance,work_arrangements,部署三,http://x.gov.cn/3.html,yesterday,\n"
        "finance,work_arrangements,部署四,http://x.gov.cn/4.html,2026-01-07,abc\n"
        "finance,work_arrangements,部署五,http://x.gov.cn/5.html,2026-01-08T08:00:00Z,,extra\n"
        "finance,work_arrangements,部署六,http://x.gov.cn/6.html,2026-01-09,"
        + "A" * 64
        + "\n"
    )
    rows = parse_history(csv_text, "csv")
    errors = {r.line: r.reason for r in rows if isinstance(r, RowError)}
    good = [r for r in rows if isinstance(r, Row)]
    assert set(errors) == {3, 4, 5, 6}
    assert "title is missing" in errors[3]
    assert "online_at" in errors[4] and "content_digest" in errors[5]
    assert "more values" in errors[6]
    assert [r.line for r in good] == [2, 7]
    # No zone: Beijing time. A date alone: midnight in Beijing. Digests read in lower case.
    assert good[0].cmd.online_at == datetime(2026, 1, 5, 9, 30, tzinfo=SHANGHAI)
    assert good[1].cmd.online_at == datetime(2026, 1, 9, tzinfo=SHANGHAI)
    assert good[1].cmd.content_digest == "a" * 64

    jsonl = (
        '{"unit": "finance", "column": "plans", "title": "规划", "url": "http://x.gov.cn/p",'
        ' "online_at": "2026-01-05T09:30:00+08:00"}\n'
        "\n"
        "not json\n"
        "[1, 2]\n"
        '{"unit": "finance", "column": "plans", "title": "规划", "url": "http://x.gov.cn/q",'
        ' "online_at": "2026-01-05", "author": "someone"}\n'
        '{"unit": 7, "column": "plans", "title": "规划", "url": "http://x.gov.cn/r",'
        ' "online_at": "2026-01-05"}\n'
    )
    rows = parse_history(jsonl, "jsonl")
    errors = {r.line: r.reason for r in rows if isinstance(r, RowError)}
    assert [r.line for r in rows if isinstance(r, Row)] == [1]
    assert set(errors) == {3, 4, 5, 6}
    assert "not JSON" in errors[3] and "object" in errors[4]
    assert "unknown field 'author'" in errors[5] and "unit: expected text" in errors[6]


BOOK = load_rule_sets(["wenan-2018", "national-2019"])
JOINED = date(2026, 3, 2)
UNIT = UnitInfo("finance", "文河县财政局", "department", "联络员", "19900000000", JOINED)


def column(days: list[date], history: dict[Any, date] | None = None) -> ColumnState:
    return ColumnState(
        "finance",
        "work_arrangements",
        visible=True,
        hidden_by=None,
        imported={
            f"imp-{d}": datetime(d.year, d.month, d.day, 10, tzinfo=SHANGHAI) for d in days
        },
        history=history or {},
    )


def test_history_episodes_run_from_a_missed_deadline_to_the_next_item_or_joining() -> None:
    # Two-weekly under both rule sets: Jan 5 is due Jan 19; nothing until Feb 9 (stale Jan 20
    # to Feb 8); Feb 9 is due Feb 23; nothing more before joining on Mar 2.
    col = column([date(2026, 1, 5), date(2026, 1, 12), date(2026, 2, 9)])
    got = decide_history(col, UNIT, BOOK)
    episodes = {
        (t.payload.rule_set, t.payload.due_date, t.payload.until)
        for t in got
        if isinstance(t.payload, ColumnWasStale)
    }
    assert episodes == {
        (rs, due, until)
        for rs in ("wenan-2018", "national-2019")
        for due, until in ((date(2026, 1, 26), date(2026, 2, 9)), (date(2026, 2, 23), JOINED))
    }
    first = next(t for t in got if t.payload.due_date == date(2026, 1, 26))
    assert first.business_time == datetime(2026, 1, 27, tzinfo=SHANGHAI)
    # Recorded already: nothing owed. An item imported later unmakes the tail episode.
    recorded = {(t.payload.rule_set, t.payload.rule, t.payload.due_date): t.payload.until
                for t in got}
    assert decide_history(column(
        [date(2026, 1, 5), date(2026, 1, 12), date(2026, 2, 9)], recorded), UNIT, BOOK) == []
    later = decide_history(
        column([date(2026, 1, 5), date(2026, 1, 12), date(2026, 2, 9), date(2026, 2, 20)],
               recorded),
        UNIT,
        BOOK,
    )
    # Unmade: not stale a single day. Feb 20's deadline (Mar 6) falls after joining: the live
    # ledger's, not the history's.
    assert {(t.payload.due_date, t.payload.until) for t in later} == {
        (date(2026, 2, 23), date(2026, 2, 24))
    }


def test_as_of_view_counts_history_for_the_days_it_covers() -> None:
    rows = MemoryRows()
    rows.put(UNITS, "finance", UNITS.decode_row({
        "code": "finance", "name": "finance", "roles": {}, "names": {},
        "history_from": "2026-01-05",
    }))
    rows.put(COLUMN, "finance--work_arrangements", COLUMN.decode_row({
        "unit": "finance", "column": "work_arrangements", "open": {}, "case": None,
        "cases": 0, "hidden": False, "late": {},
        "history": {"wenan-2018/wa/2026-01-26": {
            "due_date": "2026-01-26", "until": "2026-02-09", "rule_set": "wenan-2018",
            "rule": "wa"}},
    }))
    assert as_of_view(rows, date(2026, 1, 26))["stale_columns"] == []
    [stale] = as_of_view(rows, date(2026, 2, 1))["stale_columns"]
    assert stale["days_stale"] == 6 and stale["case"] is None
    assert as_of_view(rows, date(2026, 2, 9))["stale_columns"] == []
