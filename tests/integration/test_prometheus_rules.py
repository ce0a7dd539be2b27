"""deploy/prometheus and deploy/grafana checked by the real tools (issue 17, item 3).

* `promtool check rules` and `promtool test rules` on deploy/prometheus/gongkai-rules.yaml, with a
  case where each alert fires and one where it does not; `promtool check config` on the compose
  Prometheus configuration;
* every alert has a severity, a summary and a runbook_url naming a section of
  docs/operations.md that exists;
* the Grafana dashboard is what deploy/grafana/make_dashboard.py makes, and promtool accepts
  every one of its queries;
* the ServiceMonitors and the PodMonitor (deploy/prometheus/k8s/) use only fields of the
  monitoring.coreos.com/v1 CRDs and point at Services, pods and ports that exist.

promtool comes from Debian's `prometheus` package through deploy/scripts/promtool.sh, which
installs it when it is missing.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.natsauth import ROOT, SERVICES

PROM = ROOT / "deploy" / "prometheus"
RULES = PROM / "gongkai-rules.yaml"
RULE_TESTS = PROM / "gongkai-rules.test.yaml"
#: The cases over days, evaluated hourly (at 1m, five days are 7,000 rounds of every rule).
DAY_TESTS = PROM / "gongkai-rules.days.test.yaml"
PROMTOOL = ROOT / "deploy" / "scripts" / "promtool.sh"
DASHBOARD = ROOT / "deploy" / "grafana" / "gongkai.json"
MAKE_DASHBOARD = ROOT / "deploy" / "grafana" / "make_dashboard.py"
OPERATIONS = ROOT / "docs" / "operations.md"
MONITORS = PROM / "k8s" / "monitors.yaml"
K8S = ROOT / "deploy" / "k8s"

ALERTS = {
    "GongkaiServiceDown", "GongkaiNotReady", "GongkaiReadinessFlapping",
    "GongkaiConsumerLagGrowing", "GongkaiProjectionStalled", "GongkaiDeadLetters",
    "GongkaiAppendConflictsSpiking", "GongkaiIntegrityAlert", "GongkaiNoEventsForAWorkingDay",
    "GongkaiUnitPastVetoLine", "GongkaiStreamNoLeader", "GongkaiStreamMissing",
    "GongkaiStreamBelowThreeReplicas", "GongkaiJetStreamStorageFilling", "GongkaiDiskFilling",
}
RECORDS = {
    "type:gongkai_events_appended:rate5m",
    "handler_status:gongkai_http_requests:rate5m",
    "handler:gongkai_http_request_duration_seconds:p99_5m",
    "consumer:gongkai_consumer_lag:max",
}


def promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    # The first call may apt-get install the prometheus package.
    return subprocess.run(
        ["sh", str(PROMTOOL), *args], capture_output=True, text=True, cwd=cwd, timeout=600,
    )


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [r for g in doc["groups"] for r in g["rules"]]


def _alerts() -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for r in _rules() if "alert" in r}


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    s = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return s.replace(" ", "-")


@functools.cache
def _load_make_dashboard() -> ModuleType:
    """deploy/grafana/make_dashboard.py (not a package): loaded by path, once."""
    spec = importlib.util.spec_from_file_location("gongkai_make_dashboard", MAKE_DASHBOARD)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the class is made
    spec.loader.exec_module(mod)
    return mod


# ---- rules


def test_promtool_check_rules() -> None:
    out = promtool("check", "rules", str(RULES))
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in out.stdout


def test_promtool_test_rules() -> None:
    out = promtool("test", "rules", RULE_TESTS.name, DAY_TESTS.name, cwd=PROM)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_promtool_check_compose_prometheus_config() -> None:
    out = promtool("check", "config", str(PROM / "prometheus.yml"))
    assert out.returncode == 0, out.stdout + out.stderr
    jobs = {j["job_name"] for j in yaml.safe_load((PROM / "prometheus.yml").read_text())[
        "scrape_configs"]}
    assert {f"gongkai-{s}" for s in SERVICES} | {"gongkai-nats"} <= jobs


def test_the_alerts_and_recording_rules_the_issue_asks_for() -> None:
    assert set(_alerts()) == ALERTS
    assert {r["record"] for r in _rules() if "record" in r} == RECORDS


def test_every_alert_fires_in_one_case_and_stays_quiet_in_another() -> None:
    tests = [t for f in (RULE_TESTS, DAY_TESTS) for t in yaml.safe_load(f.read_text())["tests"]]
    firing: set[str] = set()
    quiet: set[str] = set()
    for t in tests:
        for case in t.get("alert_rule_test", []):
            (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    assert not ALERTS - firing, f"no case where these fire: {sorted(ALERTS - firing)}"
    assert not ALERTS - quiet, f"no case where these stay quiet: {sorted(ALERTS - quiet)}"


def test_every_alert_has_severity_summary_and_a_runbook_section() -> None:
    anchors = {
        _slug(m.group(1)) for m in re.finditer(r"^#{2,4} (.+)$", OPERATIONS.read_text(), re.M)
    }
    for name, rule in _alerts().items():
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        ann = rule["annotations"]
        assert ann["summary"] and name in ann["description"], name
        path, _, anchor = ann["runbook_url"].partition("#")
        assert path == "docs/operations.md", name
        assert anchor == name.lower() and anchor in anchors, f"{name}: no section {anchor}"


def test_integrity_alert_is_critical() -> None:
    assert _alerts()["GongkaiIntegrityAlert"]["labels"]["severity"] == "critical"


# ---- dashboard


def test_dashboard_is_what_the_script_makes() -> None:
    mod = _load_make_dashboard()
    assert DASHBOARD.read_text(encoding="utf-8") == mod.render(), (
        "deploy/grafana/gongkai.json is out of date: run deploy/grafana/make_dashboard.py"
    )
    assert mod.render() == mod.render()


def test_every_dashboard_query_passes_promtool(tmp_path: Path) -> None:
    mod = _load_make_dashboard()
    dash = mod.build()
    qs = mod.queries(dash)
    assert len(qs) >= 20
    # A rules file with each query as a recording rule: promtool parses every expression.
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": expr} for i, (_, expr) in enumerate(qs)
    ]}]}
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump(rules, allow_unicode=True))
    out = promtool("check", "rules", str(path))
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(qs)} rules found" in out.stdout
    # the recording rules the dashboard reads exist
    used = {r for r in RECORDS if any(r in expr for _, expr in qs)}
    assert used == RECORDS


def test_dashboard_titles_are_chinese_first() -> None:
    mod = _load_make_dashboard()
    for p in mod.build()["panels"]:
        title = p["title"]
        first = re.sub(r"^[A-Za-z0-9 ]*(?=[\u4e00-\u9fff])", "", title)  # "HTTP 请求率" etc.
        assert re.match(r"[\u4e00-\u9fff]", first), title
        assert re.search(r"[a-z]", title.split()[-1]), f"{title}: no English after the Chinese"


# ---- Prometheus Operator monitors

# The fields of monitoring.coreos.com/v1 ServiceMonitor and PodMonitor these manifests may use,
# as listed in the CRDs of prometheus-operator v0.93 (example/prometheus-operator-crd/).
_RELABEL = {"action", "modulus", "regex", "replacement", "separator", "sourceLabels", "targetLabel"}
_ACTIONS = {"replace", "keep", "drop", "hashmod", "labelmap", "labeldrop", "labelkeep",
            "lowercase", "uppercase", "keepequal", "dropequal"}
_ENDPOINT = {"interval", "path", "port", "relabelings", "metricRelabelings", "scheme",
             "scrapeTimeout", "honorLabels", "targetPort"}
_SCHEMA = {
    "ServiceMonitor": ("endpoints", {"selector", "namespaceSelector", "endpoints", "jobLabel",
                                     "targetLabels", "podTargetLabels", "sampleLimit"}),
    "PodMonitor": ("podMetricsEndpoints", {"selector", "namespaceSelector",
                                           "podMetricsEndpoints", "jobLabel",
                                           "podTargetLabels", "sampleLimit"}),
}


def _monitors() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(MONITORS.read_text()) if d]


def _k8s_docs() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in sorted(K8S.glob("*.yaml")):
        if p.name != "kustomization.yaml":
            out += [d for d in yaml.safe_load_all(p.read_text()) if d]
    return out


def _check_monitor(doc: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    kind = doc.get("kind")
    if doc.get("apiVersion") != "monitoring.coreos.com/v1" or kind not in _SCHEMA:
        return [f"not a monitoring.coreos.com/v1 ServiceMonitor/PodMonitor: {kind}"]
    extra = set(doc) - {"apiVersion", "kind", "metadata", "spec"}
    if extra:
        errors.append(f"unknown top-level keys {extra}")
    meta = doc["metadata"]
    if not meta.get("name") or meta.get("namespace") != "gongkai":
        errors.append("metadata.name and namespace gongkai required")
    ep_key, allowed = _SCHEMA[kind]
    spec = doc["spec"]
    if set(spec) - allowed:
        errors.append(f"unknown spec keys {set(spec) - allowed}")
    sel = spec.get("selector", {})
    if not isinstance(sel.get("matchLabels"), dict) or set(sel) - {"matchLabels",
                                                                   "matchExpressions"}:
        errors.append("selector.matchLabels required")
    if set(spec.get("namespaceSelector", {})) - {"any", "matchNames"}:
        errors.append("namespaceSelector: any or matchNames only")
    eps = spec.get(ep_key)
    if not isinstance(eps, list) or not eps:
        return [*errors, f"spec.{ep_key} must be a non-empty list"]
    for ep in eps:
        if set(ep) - _ENDPOINT:
            errors.append(f"unknown endpoint keys {set(ep) - _ENDPOINT}")
        if not isinstance(ep.get("port"), str):
            errors.append("endpoint port must be a port name")
        for field in ("interval", "scrapeTimeout"):
            if field in ep and not re.fullmatch(r"(\d+(ms|s|m|h))+", ep[field]):
                errors.append(f"{field}: not a duration {ep[field]!r}")
        for r in ep.get("relabelings", []):
            if set(r) - _RELABEL:
                errors.append(f"unknown relabel keys {set(r) - _RELABEL}")
            if r.get("action", "replace").lower() not in _ACTIONS:
                errors.append(f"unknown relabel action {r.get('action')}")
            if not isinstance(r.get("sourceLabels", []), list):
                errors.append("sourceLabels must be a list")
    return errors


def test_monitor_schema_check_catches_mistakes() -> None:
    good = _monitors()[0]
    assert _check_monitor(good) == []
    bad = yaml.safe_load(yaml.safe_dump(good))
    bad["spec"]["endpoints"][0]["prot"] = "http"
    bad["spec"]["endpoints"][0]["relabelings"][0]["action"] = "rename"
    bad["spec"]["endpoint"] = []
    errors = _check_monitor(bad)
    assert len(errors) == 3, errors


def test_monitors_match_the_crd_fields() -> None:
    for doc in _monitors():
        assert _check_monitor(doc) == [], (doc["metadata"]["name"], _check_monitor(doc))


def test_monitors_scrape_every_service_and_the_nats_exporter_as_the_rules_expect() -> None:
    docs = _k8s_docs()
    jobs = set()
    for m in _monitors():
        sel = m["spec"]["selector"]["matchLabels"]
        ep_key = _SCHEMA[m["kind"]][0]
        (ep,) = m["spec"][ep_key]
        job = next(r["replacement"] for r in ep["relabelings"] if r["targetLabel"] == "job")
        jobs.add(job)
        assert m["spec"]["namespaceSelector"]["matchNames"] == ["gongkai"]
        if m["kind"] == "ServiceMonitor":
            svc = [d for d in docs if d["kind"] == "Service"
                   and sel.items() <= d["metadata"].get("labels", {}).items()]
            assert len(svc) == 1, (m["metadata"]["name"], svc)
            assert ep["port"] in {p["name"] for p in svc[0]["spec"]["ports"]}
            assert job == f"gongkai-{svc[0]['metadata']['name']}"
        else:
            pods = [d for d in docs if d["kind"] in {"StatefulSet", "Deployment"}
                    and sel.items() <= d["spec"]["template"]["metadata"]["labels"].items()]
            assert [p["metadata"]["name"] for p in pods] == ["nats"]
            ports = {p["name"] for c in pods[0]["spec"]["template"]["spec"]["containers"]
                     for p in c.get("ports", [])}
            assert ep["port"] in ports
    assert jobs == {f"gongkai-{s}" for s in SERVICES} | {"gongkai-nats"}
    service_down = _alerts()["GongkaiServiceDown"]["expr"]
    pattern = re.search(r'job=~"([^"]+)"', service_down)
    assert pattern and all(re.fullmatch(pattern.group(1), j) for j in jobs)


@pytest.mark.parametrize("metric", [
    "jetstream_stream_total_messages", "gnatsd_varz_jetstream_stats_storage",
    "gnatsd_varz_jetstream_config_max_storage",
])
def test_exporter_metrics_need_the_exporter_flags_that_produce_them(metric: str) -> None:
    """jetstream_* come from -jsz (streams need -jsz=streams or more), gnatsd_varz_* from -varz."""
    assert metric in RULES.read_text()
    nats = next(d for d in _k8s_docs() if d["kind"] == "StatefulSet"
                and d["metadata"]["name"] == "nats")
    (exporter,) = [c for c in nats["spec"]["template"]["spec"]["containers"]
                   if c["name"] == "nats-exporter"]
    assert "-varz" in exporter["args"] and "-jsz=all" in exporter["args"]
