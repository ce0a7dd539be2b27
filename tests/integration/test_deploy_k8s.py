"""deploy/k8s validated offline: `kubernetes-validate --strict` against the Kubernetes schemas,
plus the checks a schema cannot make (the NATS and PostgreSQL config embedded in ConfigMaps is
the same as deploy/nats and deploy/postgres, probes, limits, disruption budgets, routing).
"""

from __future__ import annotations

import copy
import functools
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gongkai.natsserver import find_binary
from tests.natsauth import (
    ROOT,
    ROUTE_PASSWORD_ENV,
    ROUTE_USER,
    SERVICES,
    USERS,
    env_name,
    route_url,
)

K8S = ROOT / "deploy" / "k8s"
MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


@functools.cache
def _parsed() -> tuple[dict[str, Any], ...]:
    # Parsed once per worker: the network-policy questions below ask hundreds of times, and
    # parsing the manifests each time was most of this file's 20 s of CPU.
    out: list[dict[str, Any]] = []
    for p in MANIFESTS:
        out += [d for d in yaml.safe_load_all(p.read_text()) if d]
    return tuple(out)


def _docs() -> list[dict[str, Any]]:
    """A fresh copy of every manifest document: a test may not change another's input."""
    return copy.deepcopy(list(_parsed()))


def _find(kind: str, name: str) -> dict[str, Any]:
    for d in _docs():
        if d["kind"] == kind and d["metadata"]["name"] == name:
            return d
    raise AssertionError(f"no {kind}/{name}")


def test_kubernetes_validate_strict() -> None:
    exe = Path(sys.executable).parent / "kubernetes-validate"
    out = subprocess.run(
        [str(exe), "--strict", "--quiet", *map(str, MANIFESTS)],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_kustomization_lists_every_manifest() -> None:
    k = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(k["resources"]) == sorted(p.name for p in MANIFESTS)


def test_configmaps_carry_the_deploy_config_verbatim() -> None:
    nats = _find("ConfigMap", "nats-config")
    assert nats["data"]["auth.conf"] == (ROOT / "deploy/nats/auth.conf").read_text()
    pg = _find("ConfigMap", "postgres-init")
    init_sh = (ROOT / "deploy/postgres/init-databases.sh").read_text()
    assert pg["data"]["init-databases.sh"] == init_sh


def test_k8s_nats_config_is_valid_for_nats_server(tmp_path: Path) -> None:
    nats = _find("ConfigMap", "nats-config")
    for name, text in nats["data"].items():
        (tmp_path / name).write_text(text)
    env = {
        **os.environ,
        "SERVER_NAME": "nats-0",
        **{env_name(u): f"x{u}" for u in USERS},
        ROUTE_PASSWORD_ENV: "xroute",
        **{f"GK_NATS_ROUTE_{i}": route_url("xroute", f"nats-{i}.nats-headless", 6222)
           for i in range(3)},
    }
    out = subprocess.run(
        [find_binary(), "-t", "-c", str(tmp_path / "nats-server.conf")],
        capture_output=True, text=True, env=env, timeout=30,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    secret_keys = set(_find("Secret", "gongkai-nats")["stringData"])
    assert secret_keys == {*USERS, ROUTE_USER}


def test_nats_cluster_routes_authenticate() -> None:
    conf = _find("ConfigMap", "nats-config")["data"]["nats-server.conf"]
    assert f"password: ${ROUTE_PASSWORD_ENV}" in conf
    code = "\n".join(line.split("#")[0] for line in conf.splitlines())
    assert "nats-route://" not in code, "a route URL without credentials in the config"
    assert all(f"$GK_NATS_ROUTE_{i}" in code for i in (0, 1, 2)), "routes come from the environment"
    c = _find("StatefulSet", "nats")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in c["env"]}
    assert env[ROUTE_PASSWORD_ENV]["valueFrom"]["secretKeyRef"] == {
        "name": "gongkai-nats", "key": ROUTE_USER,
    }
    names = [e["name"] for e in c["env"]]
    for i in range(3):
        # $(VAR) expands only variables defined earlier in the list
        assert names.index(ROUTE_PASSWORD_ENV) < names.index(f"GK_NATS_ROUTE_{i}")
        assert env[f"GK_NATS_ROUTE_{i}"]["value"] == route_url(
            f"$({ROUTE_PASSWORD_ENV})", f"nats-{i}.nats-headless", 6222
        )


def test_nats_is_a_three_replica_statefulset_with_storage() -> None:
    ss = _find("StatefulSet", "nats")
    assert ss["spec"]["replicas"] == 3
    assert ss["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    assert _find("PodDisruptionBudget", "nats")["spec"]["maxUnavailable"] == 1


@pytest.mark.parametrize("service", SERVICES)
def test_service_deployment(service: str) -> None:
    dep = _find("Deployment", service)
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert c["args"] == ["service", service]
    for probe in ("readinessProbe", "livenessProbe"):
        assert probe in c
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["resources"]["requests"] and c["resources"]["limits"]
    env = {e["name"]: e for e in c["env"]}
    assert env["GONGKAI_NATS_USER"]["value"] == service
    assert env["GONGKAI_NATS_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == service
    assert f"GONGKAI_DB_URL_{service.upper()}" in env
    assert dep["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    _find("PodDisruptionBudget", service)
    _find("Service", service)
    common = _find("ConfigMap", "gongkai-common")["data"]
    assert common["GONGKAI_STREAM_MANAGE"] == "false"
    assert common["GONGKAI_DB_MIGRATE"] == "verify"


def test_stream_init_job_uses_the_admin_user() -> None:
    job = _find("Job", "stream-init")
    c = job["spec"]["template"]["spec"]["containers"][0]
    assert c["args"] == ["events", "init-streams", "--replicas", "3"]
    env = {e["name"]: e for e in c["env"]}
    assert env["GONGKAI_NATS_USER"]["value"] == "admin"


def test_db_migrate_job_migrates_every_service_database_as_its_role() -> None:
    # An image carries one service's migrations: a container per service, each with its image.
    job = _find("Job", "db-migrate")
    containers = {c["name"]: c for c in job["spec"]["template"]["spec"]["containers"]}
    assert set(containers) == {f"db-migrate-{s}" for s in SERVICES}
    for service in SERVICES:
        c = containers[f"db-migrate-{service}"]
        assert c["args"] == ["db", "upgrade"]
        assert c["image"].startswith(f"gongkai-{service}:")
        env = {e["name"]: e for e in c["env"]}
        assert set(env) == {f"GONGKAI_DB_URL_{service.upper()}"}
        ref = env[f"GONGKAI_DB_URL_{service.upper()}"]["valueFrom"]["secretKeyRef"]
        dep = _find("Deployment", service)["spec"]["template"]["spec"]["containers"][0]
        dep_env = {e["name"]: e for e in dep["env"]}
        assert ref == dep_env[f"GONGKAI_DB_URL_{service.upper()}"]["valueFrom"]["secretKeyRef"]


def test_ingress_routes_to_every_service() -> None:
    ing = _find("Ingress", "gongkai")
    backends = {
        p["backend"]["service"]["name"]
        for r in ing["spec"]["rules"] for p in r["http"]["paths"]
    }
    assert backends == set(SERVICES)


def test_nats_exporter_sidecar_beside_each_server() -> None:
    """The official exporter, pinned, in every NATS pod, reading the server's monitoring port on
    localhost with the flags whose metrics deploy/prometheus/gongkai-rules.yaml reads."""
    spec = _find("StatefulSet", "nats")["spec"]["template"]["spec"]
    nats, exporter = spec["containers"]
    assert nats["name"] == "nats", "the server stays the first container"
    assert exporter["name"] == "nats-exporter"
    image, _, tag = exporter["image"].partition(":")
    assert image == "natsio/prometheus-nats-exporter" and tag[0].isdigit(), exporter["image"]
    assert exporter["args"][-1] == "http://localhost:8222"
    assert {"-varz", "-jsz=all", "-use_internal_server_name"} <= set(exporter["args"])
    assert {p["name"]: p["containerPort"] for p in exporter["ports"]} == {"metrics": 7777}
    assert {"name": "monitor", "containerPort": 8222} in nats["ports"]
    assert exporter["resources"]["limits"]
    assert exporter["securityContext"]["readOnlyRootFilesystem"] is True
    assert "readinessProbe" not in exporter, "the exporter must not take NATS out of its Service"


# ---- NetworkPolicies: a small evaluator of the manifests' policies (pod labels, namespaces,
# ports), asked who can reach whom.

NS = "gongkai"


class _Pod:
    def __init__(self, name: str, ns: str | None, labels: dict[str, str],
                 ports: dict[str, int]) -> None:
        self.name, self.ns, self.labels, self.ports = name, ns, labels, ports


def _selects(sel: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in sel.get("matchLabels", {}).items()):
        return False
    for e in sel.get("matchExpressions", []):
        has, val = e["key"] in labels, labels.get(e["key"])
        ok = {"In": has and val in e.get("values", []),
              "NotIn": not has or val not in e.get("values", []),
              "Exists": has, "DoesNotExist": not has}[e["operator"]]
        if not ok:
            return False
    return True


def _peer_matches(peer: dict[str, Any], pod: _Pod) -> bool:
    if "ipBlock" in peer:
        return False
    if "namespaceSelector" in peer:
        if pod.ns is None or not _selects(peer["namespaceSelector"],
                                          {"kubernetes.io/metadata.name": pod.ns}):
            return False
    elif pod.ns != NS:
        return False
    return "podSelector" not in peer or _selects(peer["podSelector"], pod.labels)


def _port_matches(rule: dict[str, Any], dst: _Pod, port: int, proto: str) -> bool:
    if not rule.get("ports"):
        return True
    for p in rule["ports"]:
        number = p.get("port")
        number = dst.ports.get(number, -1) if isinstance(number, str) else number
        if p.get("protocol", "TCP") == proto and (number is None or number == port):
            return True
    return False


def _policies() -> list[dict[str, Any]]:
    # Read only, and asked for on every _allowed: the cached documents themselves.
    return [d for d in _parsed() if d["kind"] == "NetworkPolicy"]


def _allowed(src: _Pod, dst: _Pod, port: int, proto: str = "TCP") -> bool:
    def side(pod: _Pod, direction: str, peer_key: str, other: _Pod) -> bool:
        if pod.ns != NS:
            return True  # outside the namespace: not these policies' business
        pols = [p for p in _policies() if _selects(p["spec"]["podSelector"], pod.labels)
                and direction in p["spec"]["policyTypes"]]
        if not pols:
            return True
        key = direction.lower()
        return any(
            (not rule.get(peer_key) or any(_peer_matches(peer, other) for peer in rule[peer_key]))
            and _port_matches(rule, dst, port, proto)
            for pol in pols for rule in pol["spec"].get(key, [])
        )

    return side(src, "Egress", "to", dst) and side(dst, "Ingress", "from", src)


def _pods() -> dict[str, _Pod]:
    pods: dict[str, _Pod] = {}
    for d in _docs():
        if d["kind"] in {"Deployment", "StatefulSet", "Job", "CronJob"}:
            spec = d["spec"]["jobTemplate"]["spec"] if d["kind"] == "CronJob" else d["spec"]
            t = spec["template"]
            ports = {p["name"]: p["containerPort"] for c in t["spec"]["containers"]
                     for p in c.get("ports", []) if "name" in p}
            pods[d["metadata"]["name"]] = _Pod(d["metadata"]["name"], NS,
                                               t["metadata"]["labels"], ports)
    pods["ingress-nginx"] = _Pod("ingress-nginx", "ingress-nginx",
                                 {"app.kubernetes.io/name": "ingress-nginx"}, {"http": 80})
    pods["prometheus"] = _Pod("prometheus", "monitoring",
                              {"app.kubernetes.io/name": "prometheus"}, {"web": 9090})
    pods["kube-dns"] = _Pod("kube-dns", "kube-system", {"k8s-app": "kube-dns"}, {"dns": 53})
    pods["other-app"] = _Pod("other-app", "default", {"app": "other"}, {"http": 8080})
    pods["internet"] = _Pod("internet", None, {}, {})
    return pods


def test_network_policies_deny_by_default_in_the_namespace() -> None:
    deny = _find("NetworkPolicy", "default-deny")["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny


@pytest.mark.parametrize(
    "src", [*SERVICES, "stream-init", "db-migrate", "log-backup", "nats", "postgres"]
)
def test_every_pod_resolves_names_and_reaches_nothing_outside(src: str) -> None:
    pods = _pods()
    assert _allowed(pods[src], pods["kube-dns"], 53, "UDP")
    assert _allowed(pods[src], pods["kube-dns"], 53, "TCP")
    assert not _allowed(pods[src], pods["internet"], 443)
    assert not _allowed(pods[src], pods["other-app"], 8080)
    assert not _allowed(pods[src], pods["kube-dns"], 8080)


@pytest.mark.parametrize("service", SERVICES)
def test_services_reach_nats_and_postgres_only(service: str) -> None:
    pods = _pods()
    me = pods[service]
    assert _allowed(me, pods["nats"], 4222)
    assert _allowed(me, pods["postgres"], 5432)
    assert not _allowed(me, pods["nats"], 6222), "a service on the cluster route port"
    assert not _allowed(me, pods["nats"], 8222), "a service on the NATS monitoring port"
    for other in SERVICES:
        assert not _allowed(me, pods[other], 8080), f"{service} -> {other}"
    # the ingress controller and Prometheus reach the HTTP port, nothing else does
    assert _allowed(pods["ingress-nginx"], me, 8080)
    assert _allowed(pods["prometheus"], me, 8080)
    assert not _allowed(pods["other-app"], me, 8080)
    assert not _allowed(pods["ingress-nginx"], me, 9000)


def test_ingress_reaches_only_the_http_services() -> None:
    pods = _pods()
    ing = pods["ingress-nginx"]
    assert not _allowed(ing, pods["nats"], 4222)
    assert not _allowed(ing, pods["nats"], 8222)
    assert not _allowed(ing, pods["postgres"], 5432)


def test_init_jobs_reach_only_what_they_need() -> None:
    pods = _pods()
    assert _allowed(pods["stream-init"], pods["nats"], 4222)
    assert not _allowed(pods["stream-init"], pods["postgres"], 5432)
    assert _allowed(pods["db-migrate"], pods["postgres"], 5432)
    assert not _allowed(pods["db-migrate"], pods["nats"], 4222)
    assert _allowed(pods["log-backup"], pods["nats"], 4222)
    assert not _allowed(pods["log-backup"], pods["postgres"], 5432)


def test_the_log_is_backed_up_nightly_as_the_read_only_inspector() -> None:
    cron = _find("CronJob", "log-backup")["spec"]
    assert (cron["schedule"], cron["timeZone"], cron["concurrencyPolicy"]) == (
        "30 2 * * *", "Asia/Shanghai", "Forbid"
    )
    pod = cron["jobTemplate"]["spec"]["template"]["spec"]
    [c] = pod["containers"]
    assert "gongkai events export --out" in c["args"][0]
    env = {e["name"]: e for e in c["env"]}
    assert env["GONGKAI_NATS_USER"]["value"] == "inspector"
    assert env["GONGKAI_NATS_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "inspector"
    [vol] = pod["volumes"]
    assert vol["persistentVolumeClaim"]["claimName"] == "log-backup"
    _find("PersistentVolumeClaim", "log-backup")


def test_nats_pods_cluster_with_each_other_and_the_exporter_is_scraped() -> None:
    pods = _pods()
    nats = pods["nats"]
    assert _allowed(nats, nats, 6222), "cluster routes between NATS pods"
    assert not _allowed(nats, pods["postgres"], 5432)
    assert _allowed(pods["prometheus"], nats, nats.ports["metrics"])
    assert not _allowed(pods["prometheus"], nats, 4222)
    assert not _allowed(pods["other-app"], nats, nats.ports["metrics"])
    assert not _allowed(pods["postgres"], nats, 4222)
