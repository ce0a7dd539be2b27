"""One permission matrix, three configurations: embedded, compose and Kubernetes agree.

The committed deploy files are what ``gongkai nats config`` generates from
gongkai.trust.matrix; the embedded server's NKey users get exactly the permissions the deploy
password users get; every user of the matrix has its credentials in each deployment.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from gongkai.runtime.host import Host
from gongkai.runtime.settings import Settings
from gongkai.trust import deployfiles, matrix
from gongkai.trust.credentials import new_seed, public_key
from tests.natsauth import ROOT, ROUTE_USER

DEPLOY = ROOT / "deploy"


def _without_auth(conf: str) -> str:
    """The accounts block with each user's login replaced by its name."""
    body = conf[conf.index("accounts {"):]
    body = re.sub(r"user: (\w+), password: \$GK_NATS_\w+_PASSWORD", r"<\1>", body)
    return body


def test_committed_deploy_files_are_generated_from_the_matrix() -> None:
    stale = [
        str(rel) for rel, text in deployfiles.generate(DEPLOY).items()
        if (DEPLOY / rel).read_text() != text
    ]
    assert not stale, f"run `gongkai nats config` (make nats-config): {stale} are out of date"


def test_kubernetes_and_compose_carry_the_same_accounts_and_every_user() -> None:
    auth = (DEPLOY / "nats" / "auth.conf").read_text()
    docs = list(yaml.safe_load_all((DEPLOY / "k8s" / "nats.yaml").read_text()))
    cm = next(
        d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "nats-config"
    )
    assert cm["data"]["auth.conf"] == auth
    sts = next(d for d in docs if d["kind"] == "StatefulSet")
    env = {e["name"] for e in sts["spec"]["template"]["spec"]["containers"][0]["env"]}
    secrets = list(yaml.safe_load_all((DEPLOY / "k8s" / "secrets.yaml").read_text()))
    nats_secret = next(d for d in secrets if d["metadata"]["name"] == "gongkai-nats")
    assert set(nats_secret["stringData"]) == {*matrix.USERS, ROUTE_USER}
    compose = (DEPLOY / "compose" / "compose.yaml").read_text()
    example = (DEPLOY / "compose" / "env.example").read_text()
    for user in matrix.USERS:
        var = matrix.password_env(user)
        assert f"password: ${var}" in auth
        assert var in env and f"{var}: ${{{var}:?set in .env}}" in compose
        assert f"\n{var}=" in example


def test_the_embedded_config_grants_what_the_deploy_config_grants() -> None:
    keys = {u: public_key(new_seed()) for u in matrix.USERS}
    embedded = matrix.embedded_auth_conf(keys)
    for user, key in keys.items():
        assert embedded.count(f"nkey: {key}") == 1
        embedded = embedded.replace(f"nkey: {key}", f"<{user}>")
    assert "password" not in embedded
    assert not re.search(r"\bSU[A-Z2-7]{50,}", embedded), "a seed in the server config"
    deploy = (DEPLOY / "nats" / "auth.conf").read_text()
    assert _without_auth(embedded) == _without_auth(deploy)


def test_the_matrix_follows_event_ownership() -> None:
    m = matrix.build()
    for service in ("intake", "review", "freshness", "accountability"):
        p = m.user(service).permissions
        assert p is not None
        events = [s for s in p.publish_allow if s.startswith("gk.ev.")]
        assert events == matrix.event_subjects(service)
        assert f"gk.dlq.{service}.>" in p.publish_allow
        assert p.subscribe_allow == ("_INBOX.>", f"gk.cmd.{service}.>")
    for user in ("admin", "inspector", "cms", "subscriber"):
        p = m.user(user).permissions
        assert p is not None
        assert not [s for s in p.publish_allow if s.startswith("gk.ev.")], user
    # only admin may create or change streams
    for u in m.users:
        if u.permissions is None or u.name == "admin":
            continue
        assert "$JS.API.STREAM.CREATE.>" in u.permissions.publish_deny, u.name
        assert "$JS.API.STREAM.DELETE.>" in u.permissions.publish_deny, u.name


def test_gongkai_up_protects_the_durables_of_the_services_it_builds(tmp_path: Path) -> None:
    """``gongkai up`` builds its services once, before its server starts, and takes their
    durable consumer names for the server's permissions: the same matrix the deploy files
    are generated from (which finds the installed services' names by building each)."""
    host = Host(Settings(data_dir=tmp_path))
    built = host.build("nats://127.0.0.1:4222")
    durables = host.durables(built)
    assert durables is not None and set(durables) == set(matrix.discovered_durables())
    assert any(durables.values())  # review's reaction has one
    assert matrix.build(durables) == matrix.build()
    # One service of several (``gongkai service NAME`` embedded): every installed one's.
    assert Host(Settings(data_dir=tmp_path), only=["review"]).durables(built) is None
