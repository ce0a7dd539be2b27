"""Generate the Grafana dashboard deploy/grafana/gongkai.json (deterministic output).

    .venv/bin/python deploy/grafana/make_dashboard.py           # rewrite gongkai.json
    .venv/bin/python deploy/grafana/make_dashboard.py --check   # exit 1 if it is out of date

The panels follow the rules of deploy/prometheus/gongkai-rules.yaml: most read their recording
rules, the rest the raw metrics the alerts read. Titles are Chinese first, English after.
tests/integration/test_prometheus_rules.py fails when the committed JSON is not what this script
makes, and checks every query with promtool. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OUT = Path(__file__).with_name("gongkai.json")
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
WIDTH = 24  # Grafana's grid


@dataclass(frozen=True)
class Panel:
    title: str
    exprs: tuple[tuple[str, str], ...]  # (PromQL, legend)
    unit: str = "short"
    kind: str = "timeseries"  # or "stat"
    description: str = ""
    width: int = 8
    height: int = 8
    thresholds: tuple[tuple[float, str], ...] = ()  # (from value, colour) above the base green


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


FS = 'fstype!~"tmpfs|ramfs|squashfs|overlay"'

ROWS: tuple[Row, ...] = (
    Row("服务 services", (
        Panel("告警 firing alerts",
              (('sum by (alertname, severity)'
                ' (ALERTS{alertname=~"Gongkai.+", alertstate="firing"})',
                "{{alertname}} ({{severity}})"),),
              description="Alerts of gongkai-rules.yaml firing now; runbooks: docs/operations.md.",
              width=24, height=6),
        Panel("抓取目标在线 targets up", (('up{job=~"gongkai-.+"}', "{{job}} {{instance}}"),),
              kind="stat", description="GongkaiServiceDown fires at 0 for 2 min.",
              thresholds=((0, "red"), (1, "green"))),
        Panel("就绪 readiness", (("gongkai_ready", "{{service}} {{instance}}"),),
              description="1 ready, 0 not (GongkaiNotReady after 5 min)."),
        Panel("就绪变化 readiness changes in 15 min",
              (("changes(gongkai_ready[15m])", "{{service}} {{instance}}"),),
              description="GongkaiReadinessFlapping above 4.",
              thresholds=((4.5, "red"),)),
        Panel("HTTP 请求率 request rate",
              (("handler_status:gongkai_http_requests:rate5m", "{{handler}} {{status}}"),),
              unit="reqps"),
        Panel("HTTP 5xx 错误率 server error rate",
              (('sum by (handler) (rate(gongkai_http_requests_total{status=~"5.."}[5m]))',
                "{{handler}}"),),
              unit="reqps"),
        Panel("p99 延迟 p99 latency",
              (("handler:gongkai_http_request_duration_seconds:p99_5m", "{{handler}}"),),
              unit="s"),
    )),
    Row("事件日志 event log", (
        Panel("事件追加率 event append rate by type",
              (("type:gongkai_events_appended:rate5m", "{{type}}"),), unit="ops", width=12),
        Panel("24 小时事件数 events in 24 h",
              (("sum(increase(gongkai_events_appended_total[24h]))", "events"),),
              kind="stat", width=4,
              description="GongkaiNoEventsForAWorkingDay at 0 on working days (Beijing).",
              thresholds=((0, "red"), (1, "green"))),
        Panel("追加冲突 append conflicts",
              (("sum by (service) (rate(gongkai_append_conflicts_total[5m]))", "{{service}}"),),
              unit="ops", width=4),
        Panel("完整性失败 integrity failures in 10 min",
              (("sum by (service, check) (increase(gongkai_integrity_failures_total[10m]))",
                "{{service}} {{check}}"),),
              width=4, description="GongkaiIntegrityAlert above 0.",
              thresholds=((0.5, "red"),)),
    )),
    Row("投影 projections", (
        Panel("消费滞后 consumer lag",
              (("consumer:gongkai_consumer_lag:max", "{{consumer}}"),),
              description="GongkaiConsumerLagGrowing above 1,000 and growing for 15 min.",
              thresholds=((1000, "orange"),), width=12),
        Panel("停滞秒数 projection stalled seconds",
              (("max by (consumer) (gongkai_projection_stalled_seconds)", "{{consumer}}"),),
              unit="s", description="GongkaiProjectionStalled above 60 s.",
              thresholds=((60, "red"),), width=12),
        Panel("死信 dead letters in 10 min",
              (("sum by (consumer) (increase(gongkai_dead_letters_total[10m]))", "{{consumer}}"),),
              description="GongkaiDeadLetters above 0.", thresholds=((0.5, "red"),), width=12),
        Panel("投影应用率 events applied",
              (("sum by (projection) (rate(gongkai_events_applied_total[5m]))",
                "{{projection}}"),),
              unit="ops", width=12),
    )),
    Row("时效 freshness", (
        Panel("越过否决线的单位 units past a national veto line",
              (("max by (rule_set, line) (gongkai_freshness_units_past_veto_line)",
                "{{rule_set}} {{line}}"),),
              kind="stat", width=12,
              description="national-2019: stale ≥ 5, long idle ≥ 10, blank ≥ 5 columns, homepage "
                          "idle 2 weeks (GongkaiUnitPastVetoLine).",
              thresholds=((1, "red"),)),
        Panel("栏目状态 columns by state",
              (("sum by (rule_set, state) (gongkai_freshness_columns)",
                "{{rule_set}} {{state}}"),), width=12),
        Panel("过期栏目最多的单位 units with most stale columns",
              (('topk(10, max by (rule_set, unit) '
                '(gongkai_freshness_unit_columns{state="stale"}))', "{{rule_set}} {{unit}}"),),
              width=24, description="≥ 3 stale columns per site is the early warning; "
                                    "the veto line is 5.",
              thresholds=((3, "orange"), (5, "red"))),
    )),
    Row("JetStream 与磁盘 JetStream and disks", (
        Panel("GONGKAI 副本数 replicas reporting",
              (('count(jetstream_stream_total_messages{stream_name="GONGKAI"})', "replicas"),),
              kind="stat", width=6, description="GongkaiStreamBelowThreeReplicas below 3.",
              thresholds=((0, "red"), (3, "green"))),
        Panel("GONGKAI 领导者 leaders",
              (('count(jetstream_stream_total_messages{stream_name="GONGKAI",'
                ' is_stream_leader="true"})', "leaders"),),
              kind="stat", width=6, description="GongkaiStreamNoLeader when none.",
              thresholds=((0, "red"), (1, "green"))),
        Panel("流消息数 stream messages",
              (("max by (stream_name) (jetstream_stream_total_messages)", "{{stream_name}}"),),
              width=12),
        Panel("JetStream 存储占用 storage used of max",
              (("gnatsd_varz_jetstream_stats_storage"
                " / gnatsd_varz_jetstream_config_max_storage", "{{server_id}}"),),
              unit="percentunit", width=12,
              description="GongkaiJetStreamStorageFilling above 70 % or full within a day.",
              thresholds=((0.7, "orange"), (0.9, "red"))),
        Panel("磁盘可用 disk space available",
              ((f"node_filesystem_avail_bytes{{{FS}}} / node_filesystem_size_bytes{{{FS}}}",
                "{{instance}} {{mountpoint}}"),),
              unit="percentunit", width=12,
              description="GongkaiDiskFilling below 15 % and empty within a day.",
              thresholds=((0, "red"), (0.15, "green"))),
    )),
)


def _thresholds(panel: Panel) -> dict[str, Any]:
    base = "green" if not panel.thresholds or panel.thresholds[0][0] != 0 else "red"
    steps: list[dict[str, Any]] = [{"color": base, "value": None}]
    steps += [{"color": c, "value": v} for v, c in panel.thresholds if not (v == 0 and c == base)]
    return {"mode": "absolute", "steps": steps}


def _panel(panel: Panel, pid: int, x: int, y: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": pid,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {
            "defaults": {"unit": panel.unit, "thresholds": _thresholds(panel)},
            "overrides": [],
        },
        "targets": [
            {
                "datasource": DATASOURCE,
                "expr": expr,
                "legendFormat": legend,
                "refId": chr(ord("A") + i),
            }
            for i, (expr, legend) in enumerate(panel.exprs)
        ],
    }
    if panel.kind == "stat":
        out["options"] = {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
        }
    else:
        out["options"] = {"legend": {"displayMode": "list", "placement": "bottom"},
                          "tooltip": {"mode": "multi", "sort": "desc"}}
        if panel.thresholds:
            out["fieldConfig"]["defaults"]["custom"] = {"thresholdsStyle": {"mode": "line"}}
    return out


def build() -> dict[str, Any]:
    """The dashboard as a dict: rows, then their panels left to right, wrapping at 24."""
    panels: list[dict[str, Any]] = []
    pid, y = 1, 0
    for row in ROWS:
        panels.append({"id": pid, "type": "row", "title": row.title, "collapsed": False,
                       "gridPos": {"h": 1, "w": WIDTH, "x": 0, "y": y}, "panels": []})
        pid, y = pid + 1, y + 1
        x, row_h = 0, 0
        for p in row.panels:
            if x + p.width > WIDTH:
                x, y, row_h = 0, y + row_h, 0
            panels.append(_panel(p, pid, x, y))
            pid, x, row_h = pid + 1, x + p.width, max(row_h, p.height)
        y += row_h
    return {
        "title": "公开平台 gongkai",
        "uid": "gongkai-overview",
        "description": "gongkai services, event log, projections, freshness and JetStream. "
                       "Generated by deploy/grafana/make_dashboard.py; alerts and runbooks: "
                       "deploy/prometheus/gongkai-rules.yaml, docs/operations.md.",
        "tags": ["gongkai"],
        "timezone": "Asia/Shanghai",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-24h", "to": "now"},
        "annotations": {"list": []},
        "links": [],
        "templating": {"list": [{
            "name": "datasource",
            "label": "数据源 data source",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
            "hide": 0,
            "refresh": 1,
            "options": [],
        }]},
        "panels": panels,
    }


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every query in the dashboard."""
    return [
        (p["title"], t["expr"])
        for p in dashboard["panels"]
        for t in p.get("targets", [])
    ]


def render() -> str:
    return json.dumps(build(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if gongkai.json is out of date")
    args = ap.parse_args(argv)
    text = render()
    if args.check:
        if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT} is out of date: run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
