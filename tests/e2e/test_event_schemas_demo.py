"""Every event of the demo's days validates against the published schemas, as a subscriber sees it.

The platform in-process on a fixed clock (real nats-server): the demo county, ``gongkai demo``
on the day the county joined and again three weeks later (late disclosure, a supervision
breached). Then the whole log is read raw, as a downstream system reads it, and each event is
checked against docs/schemas with a 2020-12 validator that asserts formats:

* against ``envelope.json`` and its own ``<Type>.v<n>.json``, and its subject names its type;
* the semantics docs/events.md states hold on the real log: ``ColumnStale`` is recorded once
  per rule set, rule and episode on the column's one aggregate id, and each is closed by its
  own ``ColumnRefreshed``; a supervision case's events follow its column's first
  ``ColumnStale``, it has at most one notice, it is closed once, and ``before_notice`` means it
  had no notice.
"""

from __future__ import annotations

import io
import json
from collections import Counter, defaultdict
from datetime import date
from typing import Any

import pytest

from gongkai.events.schemas import schema_file
from gongkai_demo.county import seed_demo
from gongkai_demo.story import STORY_COLUMNS, DemoStory
from tests.conftest import Platform
from tests.e2e.test_demo import next_day
from tests.schemas import errors

pytestmark = pytest.mark.timeout(300)


async def demo_log(platform: Platform) -> list[tuple[str, dict[str, Any]]]:
    await seed_demo(platform.evlog, platform.clock.now(), units=list(STORY_COLUMNS))
    await platform.settle()
    await DemoStory(platform.client, now=platform.clock.now, out=io.StringIO()).run(
        directory_loaded=True
    )
    await next_day(platform, date(2026, 3, 23))
    await DemoStory(platform.client, now=platform.clock.now, out=io.StringIO()).run()
    await platform.settle()
    return [(m.subject, json.loads(m.data)) async for m in platform.evlog.raw_replay()]


async def test_a_demo_day_validates_and_keeps_the_stated_semantics(platform: Platform) -> None:
    log = await demo_log(platform)
    types = Counter(e["type"] for _, e in log)
    assert len(log) > 200 and types["ViolationRecorded"] >= 3, types

    failed = []
    for subject, event in log:
        own = schema_file(event["type"], event["schema_version"])
        why = errors("envelope.json", event) + errors(own, event)
        if subject.rsplit(".", 1)[1] != event["type"] or why:
            failed.append((subject, why[:3]))
    assert not failed, f"{len(failed)} of {len(log)} events fail: {failed[:5]}"

    # ColumnStale: one per (rule set, rule, episode) of a column, each closed by its own refresh.
    stale: dict[tuple[str, str, str, str], str] = {}
    rule_sets: defaultdict[str, set[str]] = defaultdict(set)
    for _, e in log:
        p = e["payload"]
        if e["type"] == "ColumnStale":
            key = (e["aggregate_id"], p["rule_set"], p["rule"], p["episode"])
            assert key not in stale, f"two ColumnStale for {key}"
            assert e["aggregate_id"] == f"{p['unit']}--{p['column']}"
            stale[key] = e["event_id"]
            rule_sets[e["aggregate_id"]].add(p["rule_set"])
        elif e["type"] == "ColumnRefreshed" and p["stale_event_id"] is not None:
            key = (e["aggregate_id"], p["rule_set"], p["rule"], p["episode"])
            assert stale.get(key) == p["stale_event_id"], f"{key} closes another episode"
    assert any(len(s) > 1 for s in rule_sets.values()), (
        "the demo has no column stale under two rule sets: the per-rule-set case is untested"
    )

    # Supervision: opened by the column's ColumnStale, noticed at most once, closed once.
    first_stale: dict[str, int] = {}
    notices: Counter[str] = Counter()
    closes: Counter[str] = Counter()
    outcomes = Counter()
    for i, (_, e) in enumerate(log):
        p = e["payload"]
        if e["type"] == "ColumnStale":
            first_stale.setdefault(e["aggregate_id"], i)
        elif e["type"] in ("SupervisionIssued", "SupervisionClosed"):
            column = f"{p['unit']}--{p['column']}"
            assert e["aggregate_id"] == p["case_id"]
            assert p["case_id"].startswith(f"{column}--")
            assert first_stale.get(column, i) < i, f"{p['case_id']} before any ColumnStale"
            assert closes[p["case_id"]] == 0, f"{e['type']} after {p['case_id']} closed"
            if e["type"] == "SupervisionIssued":
                notices[p["case_id"]] += 1
                assert notices[p["case_id"]] == 1, f"{p['case_id']} noticed twice"
            else:
                closes[p["case_id"]] += 1
                outcomes[p["outcome"]] += 1
                noticed = notices[p["case_id"]] > 0
                assert (p["outcome"] == "before_notice") == (not noticed), p
    assert notices and closes, "the demo issues and closes no supervision case"
    assert outcomes["before_notice"] > 0, outcomes
