"""Rule sets as data: the shipped files match the notice, and bad files are refused by place."""

from __future__ import annotations

import textwrap
from datetime import date
from pathlib import Path

import pytest

from gongkai.rules import (
    DEFAULT_RULE_SETS,
    MonthDay,
    Period,
    RuleSetError,
    default_catalog,
    load_rule_sets,
    shipped_rule_sets,
)
from gongkai_freshness.adapters.config import ConfigError, FreshnessConfig

D = date.fromisoformat

# Attachment 2, row by row: group and every column's Chinese name, in the notice's order.
ATTACHMENT_2 = {
    "概况信息": ["地区(行业)介绍", "机构设置和职能", "领导成员和分工"],
    "政策法规": ["政府规章", "规范性文件", "其他文件"],
    "规划总结": ["规划", "计划", "年度报告、工作总结"],
    "工作动态": ["领导活动、会议讲话", "工作部署", "公告公示", "突发公共事件", "政府大事记"],
    "行政执法": ["行政许可", "行政处罚", "行政监管", "侵权假冒行政处罚", "其他行政执法行为"],
    "财政财务": ["专项经费", "政府投资项目", "财政(务)预决算", "行政事业性收费", "政府采购"],
    "统计信息": ["统计信息"],
    "办事指南": ["办事指南"],
    "其他": ["其他"],
    "住房保障": ["住房保障"],
    "重大项目建设": ["重大项目建设"],
    "公共资源配置": ["公共资源配置"],
}


def test_shipped_rule_sets_load_and_share_the_catalog() -> None:
    assert {"wenan-2018", "national-2019"} <= set(shipped_rule_sets())
    wenan, national = load_rule_sets(DEFAULT_RULE_SETS)
    assert wenan.catalog is not None and national.catalog.id == wenan.catalog.id == "wenan-2018"
    got = {g.zh: [wenan.catalog.columns[c].zh for c in g.columns] for g in wenan.catalog.groups}
    assert got == ATTACHMENT_2
    for col in wenan.catalog.columns.values():
        assert col.code.isascii() and col.en and col.deadline.zh and col.deadline.en
        # Every kept column is at least checked for blankness and has a periodic line.
        assert {"blank"} < {r.id for r in wenan.rules_for(col.code)}
        assert any(r.kind == "periodic" for r in wenan.rules_for(col.code))


@pytest.mark.parametrize(
    ("column", "rule_set", "expected"),
    [
        ("leaders_duties", "wenan-2018", {"yearly", "leadership-10wd", "blank"}),
        ("normative_documents", "wenan-2018", {"within-20wd", "half-yearly", "blank"}),
        ("leaders_activities", "wenan-2018", {"fortnightly", "blank"}),
        ("administrative_penalties", "wenan-2018", {"within-10wd", "yearly", "blank"}),
        ("service_guides", "wenan-2018", {"within-3wd", "yearly", "blank"}),
        ("annual_reports", "wenan-2018", {"yearly", "annual-report", "blank"}),
        ("announcements", "national-2019", {"notices-6m", "blank"}),
        ("leaders_activities", "national-2019", {"news-2w", "blank"}),
        ("leaders_duties", "national-2019", {"personnel-plans-1y", "blank"}),
        ("annual_reports", "national-2019", {"annual-report", "blank"}),
        ("statistics", "national-2019", {"blank"}),
    ],
)
def test_columns_carry_the_notices_rules(column: str, rule_set: str, expected: set[str]) -> None:
    rs = next(r for r in load_rule_sets() if r.id == rule_set)
    assert {r.id for r in rs.rules_for(column)} == expected


def test_annual_report_deadlines_per_rule_set_and_unit_kind() -> None:
    wenan, national = load_rule_sets()
    w, n = wenan.rule("annual-report"), national.rule("annual-report")
    assert w is not None and n is not None
    assert w.deadline_in(2028, "department") == D("2028-02-29")
    assert w.deadline_in(2026, "county_office") == D("2026-02-28")
    assert n.deadline_in(2026, "department") == D("2026-01-31")
    assert n.deadline_in(2026, "township") == D("2026-01-31")
    assert n.deadline_in(2026, "county_office") == D("2026-03-31")


def test_unit_kind_applicability_from_the_table() -> None:
    cat = default_catalog()
    assert cat.kept_by_default("normative_documents", "committee")
    assert cat.column("housing_security").exists_for("department")  # type: ignore[union-attr]
    assert not cat.kept_by_default("housing_security", "department")  # the bureau ticks ✓
    assert not cat.column("housing_security").exists_for("township")  # type: ignore[union-attr]
    assert cat.kept_by_default("major_projects", "township")
    assert not cat.kept_by_default("major_projects", "committee")
    assert not cat.kept_by_default("public_resources", "township")
    assert cat.column("region_introduction").redatable  # type: ignore[union-attr]
    assert cat.column("nope") is None


@pytest.mark.parametrize(
    ("period", "start", "end"),
    [
        (Period(2, "weeks"), "2026-03-02", "2026-03-16"),
        (Period(6, "months"), "2025-08-31", "2026-02-28"),
        (Period(6, "months"), "2027-08-31", "2028-02-29"),
        (Period(1, "years"), "2024-02-29", "2025-02-28"),
        (Period(10, "days"), "2026-12-25", "2027-01-04"),
    ],
)
def test_periods(period: Period, start: str, end: str) -> None:
    assert period.after(D(start)) == D(end)


def test_month_days() -> None:
    assert MonthDay(2, None).in_year(2026) == D("2026-02-28")
    assert MonthDay(2, 29).in_year(2026) == D("2026-02-28")
    assert str(MonthDay(1, 31)) == "01-31"


GOOD_OVERLAY = """\
id: county-extra
title: {zh: 额外, en: Extra}
source: test
catalog_from: wenan-2018
rules:
  - {id: monthly, kind: periodic, every: 1 month, columns: [statistics]}
"""


def write(tmp_path: Path, text: str, name: str = "rules.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


def test_an_operator_rule_set_by_path(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD_OVERLAY)
    (extra,) = load_rule_sets([path])
    assert extra.id == "county-extra" and extra.catalog.id == "wenan-2018"
    assert [r.id for r in extra.rules_for("statistics")] == ["monthly"]
    both = load_rule_sets(["wenan-2018", path])
    assert [rs.id for rs in both] == ["wenan-2018", "county-extra"]


BAD = [
    ("not yaml", "id: [", "not valid YAML"),
    ("not a mapping", "- 1\n", "expected a mapping at the top level"),
    (
        "unknown top-level key",
        GOOD_OVERLAY + "colour: red\n",
        "unknown key(s): colour",
    ),
    (
        "misspelt rule key",
        GOOD_OVERLAY.replace("every: 1 month", "evry: 1 month"),
        "rules[0]: missing key(s): every",
    ),
    (
        "bad period",
        GOOD_OVERLAY.replace("1 month", "monthly"),
        "rules[0].every: expected e.g. '2 weeks'",
    ),
    (
        "unknown kind",
        GOOD_OVERLAY.replace("periodic", "sometimes"),
        "rules[0].kind: unknown rule kind 'sometimes'",
    ),
    (
        "unknown column",
        GOOD_OVERLAY.replace("[statistics]", "[statistic]"),
        "rules[0].columns: not in catalog wenan-2018: statistic",
    ),
    (
        "no catalog",
        GOOD_OVERLAY.replace("catalog_from: wenan-2018\n", ""),
        "give a catalog, or name one with catalog_from",
    ),
    (
        "bad working days",
        GOOD_OVERLAY.replace(
            "kind: periodic, every: 1 month", "kind: triggered, within_working_days: 0"
        ),
        "rules[0].within_working_days: expected a whole number from 1 to 250",
    ),
    (
        "bad day of year",
        GOOD_OVERLAY.replace("kind: periodic, every: 1 month", "kind: dated, by: 02-30"),
        "rules[0].by: 02-30 is not a day of the year",
    ),
    (
        "unknown unit kind",
        GOOD_OVERLAY.replace(
            "kind: periodic, every: 1 month",
            "kind: dated, by: 01-31, by_unit_kind: {village: 02-01}",
        ),
        "rules[0].by_unit_kind: unknown key(s): village",
    ),
    (
        "one id, two meanings",
        GOOD_OVERLAY + "  - {id: monthly, kind: periodic, every: 2 months, columns: [chronicle]}\n",
        "rule monthly: one rule id is defined with different parameters",
    ),
    (
        "a rule twice on a column",
        GOOD_OVERLAY + "  - {id: monthly, kind: periodic, every: 1 month, columns: all}\n",
        "column statistics: rule id 'monthly' applies twice",
    ),
    (
        "warning above the veto",
        GOOD_OVERLAY + "site:\n  - {id: s, measure: blank_columns, warn: 5, veto: 5,"
        " text: {zh: 空, en: blank}}\n",
        "site[0].warn: the warning level (5) must be below the veto (5)",
    ),
    (
        "site line names a rule it does not have",
        GOOD_OVERLAY
        + "site:\n  - {id: s, measure: stale_columns, rules: [news-2w], warn: 3, veto: 5,"
        " text: {zh: 旧, en: stale}}\n",
        "site[0].rules: no such rule in this rule set: news-2w",
    ),
    (
        "column code with a hyphen",
        """\
        id: tiny
        title: {zh: 小, en: Tiny}
        source: test
        catalog:
          - group: g
            zh: 组
            en: Group
            deadline: {zh: 每年, en: yearly}
            columns:
              - {code: bad-code, zh: 栏, en: Column}
        """,
        "catalog[0].columns[0].code: 'bad-code' is not a valid code",
    ),
    (
        "column without a deadline text",
        """\
        id: tiny
        title: {zh: 小, en: Tiny}
        source: test
        catalog:
          - group: g
            zh: 组
            en: Group
            columns:
              - {code: c, zh: 栏, en: Column}
        """,
        "catalog[0].columns[0]: no deadline text",
    ),
]


@pytest.mark.parametrize(
    ("text", "message"), [(t, m) for _, t, m in BAD], ids=[n for n, _, _ in BAD]
)
def test_bad_rule_sets_are_refused_with_the_place(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(RuleSetError) as err:
        load_rule_sets([path])
    assert str(path) in str(err.value)
    assert message in str(err.value)


def test_rule_sets_must_share_a_catalog(tmp_path: Path) -> None:
    other = write(
        tmp_path,
        """\
        id: tiny
        title: {zh: 小, en: Tiny}
        source: test
        catalog:
          - group: g
            zh: 组
            en: Group
            deadline: {zh: 每年, en: yearly}
            columns:
              - {code: c, zh: 栏, en: Column}
        """,
    )
    with pytest.raises(RuleSetError, match="different catalogs"):
        load_rule_sets(["wenan-2018", other])
    with pytest.raises(RuleSetError, match="no such rule set"):
        load_rule_sets(["wenan-2019"])
    with pytest.raises(RuleSetError, match="loaded twice"):
        load_rule_sets(["wenan-2018", "wenan-2018"])
    with pytest.raises(RuleSetError, match="cannot read"):
        load_rule_sets([tmp_path / "missing.yaml"])


def test_freshness_config_from_the_environment() -> None:
    cfg = FreshnessConfig.from_env(
        {
            "GONGKAI_FRESHNESS_RULE_SETS": "national-2019",
            "GONGKAI_FRESHNESS_TICK_SECONDS": "5",
            "GONGKAI_FRESHNESS_WARN_DAYS": "2",
        }
    )
    assert (cfg.rule_sets, cfg.tick_seconds, cfg.warn_working_days) == (("national-2019",), 5.0, 2)
    (rs,) = cfg.load_rule_sets()
    assert {r.warn_working_days for r in rs.rules} == {2}
    assert FreshnessConfig.from_env({}).rule_sets == DEFAULT_RULE_SETS
    for env, var in [
        ({"GONGKAI_FRESHNESS_TICK_SECONDS": "soon"}, "TICK_SECONDS"),
        ({"GONGKAI_FRESHNESS_WARN_DAYS": "-1"}, "WARN_DAYS"),
        ({"GONGKAI_FRESHNESS_RULE_SETS": " , "}, "RULE_SETS"),
    ]:
        with pytest.raises(ConfigError, match=var):
            FreshnessConfig.from_env(env)
