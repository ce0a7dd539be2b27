"""The deploy files' NATS users, generated from the permission matrix (``gongkai nats config``).

Compose and Kubernetes authenticate NATS users with passwords that nats-server reads from its
environment (``$GK_NATS_<USER>_PASSWORD``); the files that name those users are:

- ``deploy/nats/auth.conf``: the accounts, users and permissions (whole file);
- ``deploy/k8s/nats.yaml``: the same text in the ``nats-config`` ConfigMap, and the password
  variables of the StatefulSet (from the ``gongkai-nats`` Secret);
- ``deploy/k8s/secrets.yaml``: the ``gongkai-nats`` Secret's keys (placeholder values);
- ``deploy/compose/compose.yaml`` and ``deploy/compose/env.example``: the password variables.

Only the generated parts of the YAML and env files are rewritten; the rest stays as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from gongkai.trust.matrix import USERS, Matrix, build, deploy_auth_conf, password_env

AUTH_CONF = Path("nats/auth.conf")
K8S_NATS = Path("k8s/nats.yaml")
K8S_SECRETS = Path("k8s/secrets.yaml")
COMPOSE = Path("compose/compose.yaml")
ENV_EXAMPLE = Path("compose/env.example")


class DeployFileError(RuntimeError):
    """A deploy file no longer has the part the generator rewrites."""


def placeholder(user: str) -> str:
    return "changeMe" + user.capitalize()


def _replace_run(
    text: str, pattern: str, make: Callable[[str], list[str]], where: str
) -> str:
    """Replace the first run of consecutive lines matching ``pattern`` with ``make(indent)``."""
    lines = text.split("\n")
    rx = re.compile(pattern)
    start = next((i for i, ln in enumerate(lines) if rx.match(ln)), None)
    if start is None:
        raise DeployFileError(f"{where}: no line matches {pattern!r}")
    end = start
    while end < len(lines) and rx.match(lines[end]):
        end += 1
    indent = re.match(r"\s*", lines[start]).group(0)  # type: ignore[union-attr]
    return "\n".join([*lines[:start], *make(indent), *lines[end:]])


def _k8s_nats(text: str, auth: str) -> str:
    begin = text.index("  auth.conf: |\n") + len("  auth.conf: |\n")
    end = text.index("\n---\n", begin)
    block = "\n".join(("    " + ln) if ln else "" for ln in auth.rstrip("\n").split("\n"))
    text = text[:begin] + block + text[end:]

    def env(indent: str) -> list[str]:
        out: list[str] = []
        for u in USERS:
            out += [
                f"{indent}- name: {password_env(u)}",
                f"{indent}  valueFrom: {{secretKeyRef: {{name: gongkai-nats, key: {u}}}}}",
            ]
        return out

    # The password variables: "- name: GK_NATS_<USER>_PASSWORD" and its valueFrom line,
    # excluding the route's (the cluster block, written by hand).
    pattern = (
        r"\s*(- name: GK_NATS_(?!ROUTE_)[A-Z]+_PASSWORD$"
        r"|  valueFrom: \{secretKeyRef: \{name: gongkai-nats, key: (?!route\})[a-z]+\}\}$)"
    )
    return _replace_run(text, pattern, env, str(K8S_NATS))


def _k8s_secrets(text: str) -> str:
    def keys(indent: str) -> list[str]:
        return [f"{indent}{u}: {placeholder(u)}" for u in USERS]

    head, sep, rest = text.partition("name: gongkai-nats\n")
    if not sep:
        raise DeployFileError(f"{K8S_SECRETS}: no gongkai-nats Secret")
    doc, sep2, tail = rest.partition("\n---\n")
    doc = _replace_run(doc, r"  (?!route:)[a-z]+: changeMe[A-Za-z]*$", keys, str(K8S_SECRETS))
    return head + sep + doc + sep2 + tail


def _compose(text: str) -> str:
    def env(indent: str) -> list[str]:
        return [f"{indent}{password_env(u)}: ${{{password_env(u)}:?set in .env}}" for u in USERS]

    return _replace_run(
        text, r"\s+GK_NATS_(?!ROUTE_)[A-Z]+_PASSWORD: \$\{", env, str(COMPOSE)
    )


def _env_example(text: str) -> str:
    def env(indent: str) -> list[str]:
        return [f"{password_env(u)}={placeholder(u)}" for u in USERS]

    return _replace_run(text, r"GK_NATS_(?!ROUTE_)[A-Z]+_PASSWORD=", env, str(ENV_EXAMPLE))


def generate(deploy_dir: Path, matrix: Matrix | None = None) -> dict[Path, str]:
    """Each generated deploy file (relative to ``deploy_dir``) and its new text."""
    m = matrix or build()
    auth = deploy_auth_conf(m)

    def read(rel: Path) -> str:
        return (deploy_dir / rel).read_text()

    return {
        AUTH_CONF: auth,
        K8S_NATS: _k8s_nats(read(K8S_NATS), auth),
        K8S_SECRETS: _k8s_secrets(read(K8S_SECRETS)),
        COMPOSE: _compose(read(COMPOSE)),
        ENV_EXAMPLE: _env_example(read(ENV_EXAMPLE)),
    }


def write(deploy_dir: Path, matrix: Matrix | None = None) -> list[Path]:
    """Rewrite the generated deploy files; those whose text changed."""
    changed: list[Path] = []
    for rel, text in generate(deploy_dir, matrix).items():
        path = deploy_dir / rel
        if not path.exists() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            changed.append(path)
    return changed
