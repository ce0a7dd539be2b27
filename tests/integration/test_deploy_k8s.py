"""deploy/k8s validated offline: `kubernetes-validate --strict` against the Kubernetes schemas,
plus the checks a schema cannot make (the NATS and PostgreSQL config embedded in ConfigMaps is
the same as deploy/nats and deploy/postgres, probes, limits, disruption budgets, routing).
"""

from __future__ import annotations

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


def _docs() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in MANIFESTS:
        out += [d for d in yaml.safe_load_all(p.read_text()) if d]
    return out


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
