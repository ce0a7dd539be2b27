"""Test helpers: nats-server with gongkai's production accounts (deploy/nats/auth.conf).

The permission test and the cluster failover test start real nats-servers whose accounts,
users and permissions are exactly the deploy configuration; passwords are the environment
variables the deploy files name, set here for the child processes.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gongkai.trust import matrix

ROOT = Path(__file__).resolve().parents[1]
AUTH_CONF = ROOT / "deploy" / "nats" / "auth.conf"
#: Every NATS user of the permission matrix (gongkai.trust.matrix), admin the stream-init one.
USERS = matrix.USERS
SERVICES = ("intake", "review", "freshness", "accountability")


#: The cluster's route credentials (deploy/nats/nats-server.conf: cluster.authorization).
ROUTE_USER = "route"
ROUTE_PASSWORD_ENV = "GK_NATS_ROUTE_PASSWORD"


def env_name(user: str) -> str:
    return matrix.password_env(user)


def route_url(password: str, host: str, port: int) -> str:
    """A route URL carrying the route credentials, as the deploy files build it."""
    return f"nats-route://{ROUTE_USER}:{password}@{host}:{port}"


def cluster_config(name: str, listen_port: int, route_password: str, routes: list[str]) -> str:
    """The cluster block of deploy/nats/nats-server.conf, with literal values."""
    listed = "\n".join(f'    "{r}"' for r in routes)
    return (
        "cluster {\n"
        f"  name: {name}\n"
        f'  listen: "127.0.0.1:{listen_port}"\n'
        f'  authorization {{ user: {ROUTE_USER}, password: "{route_password}", timeout: 2 }}\n'
        f"  routes: [\n{listed}\n  ]\n"
        "}\n"
    )


@contextmanager
def nats_passwords() -> Iterator[dict[str, str]]:
    """Fresh passwords in os.environ (nats-server resolves $GK_NATS_*_PASSWORD from it)."""
    # nats-server parses an environment value as a config value: a password must start with
    # a letter (see docs/operations.md, "Credentials").
    pw = {u: "gk" + secrets.token_hex(12) for u in USERS}
    old = {env_name(u): os.environ.get(env_name(u)) for u in USERS}
    os.environ.update({env_name(u): p for u, p in pw.items()})
    try:
        yield pw
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def auth_config() -> str:
    """The accounts block as a server includes it (inlined: includes are file-relative)."""
    return AUTH_CONF.read_text()
