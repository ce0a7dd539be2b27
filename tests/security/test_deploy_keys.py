"""Deploy: each service gets its own event-signing key and the trust anchors, nothing more."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("intake", "review", "freshness", "accountability")


def test_compose_gives_each_service_only_its_own_key() -> None:
    doc = yaml.safe_load((ROOT / "deploy/compose/compose.yaml").read_text())
    assert set(doc["secrets"]) == {"gk-trust", *(f"gk-signing-{s}" for s in SERVICES)}
    for s in SERVICES:
        svc = doc["services"][s]
        keys_dir = svc["environment"]["GONGKAI_KEYS_DIR"]
        mounted = {m["source"]: m["target"] for m in svc["secrets"]}
        assert mounted == {
            f"gk-signing-{s}": f"{keys_dir}/{s}.key",
            "gk-trust": f"{keys_dir}/trust.json",
        }
    assert "keys/" in (ROOT / "deploy/compose/.gitignore").read_text()


def test_kubernetes_pods_mount_only_their_own_key() -> None:
    docs = list(yaml.safe_load_all((ROOT / "deploy/k8s/services.yaml").read_text()))
    common = next(d for d in docs if d and d["kind"] == "ConfigMap")
    keys_dir = common["data"]["GONGKAI_KEYS_DIR"]
    deployments: dict[str, Any] = {
        d["metadata"]["name"]: d for d in docs if d and d["kind"] == "Deployment"
    }
    for s in SERVICES:
        spec = deployments[s]["spec"]["template"]["spec"]
        mount = next(m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "keys")
        assert mount["mountPath"] == keys_dir and mount["readOnly"] is True
        volume = next(v for v in spec["volumes"] if v["name"] == "keys")
        items = [
            (src["secret"]["name"], item["key"])
            for src in volume["projected"]["sources"]
            for item in src["secret"]["items"]
        ]
        assert items == [("gongkai-signing", f"{s}.key"), ("gongkai-trust", "trust.json")]
        assert spec["securityContext"]["fsGroup"] == spec["securityContext"]["runAsGroup"]
    secrets = {
        d["metadata"]["name"]: d
        for d in yaml.safe_load_all((ROOT / "deploy/k8s/secrets.yaml").read_text())
        if d and d["kind"] == "Secret"
    }
    assert set(secrets["gongkai-signing"]["stringData"]) == {f"{s}.key" for s in SERVICES}
    assert set(secrets["gongkai-trust"]["stringData"]) == {"trust.json"}
