"""Every service's ``domain/`` imports no NATS client, no web framework and no database.

The deciders and rules are pure (facts in, events or a refusal out); the runner, the log and
the read models are adapters. Checked in a fresh interpreter, one domain module at a time, so
one module's adapters cannot hide behind another's imports.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted(
    f"{p.parts[-3]}.domain.{p.stem}"
    for p in ROOT.glob("services/*/src/*/domain/*.py")
    if p.name != "__init__.py"
)
FORBIDDEN = ("nats", "fastapi", "starlette", "sqlalchemy", "uvicorn", "httpx")


def test_every_service_has_a_domain() -> None:
    assert {m.split(".")[0] for m in MODULES} == {
        "gongkai_intake", "gongkai_review", "gongkai_freshness", "gongkai_accountability",
    }


def test_no_domain_module_imports_an_adapter() -> None:
    code = (
        "import importlib, sys\n"
        f"forbidden = {FORBIDDEN!r}\n"
        f"for m in {MODULES!r}:\n"
        "    importlib.import_module(m)\n"
        "bad = sorted({n.split('.')[0] for n in sys.modules} & set(forbidden))\n"
        "print(','.join(bad))\n"
    )
    # All modules in one interpreter (one start-up); on a failure each is tried alone to name
    # the culprits.
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    bad = out.stdout.strip()
    if bad:
        culprits = [m for m in MODULES if _imports(m) & set(FORBIDDEN)]
        pytest.fail(f"domain modules importing {bad}: {culprits}")


def _imports(module: str) -> set[str]:
    code = (
        f"import importlib, sys; importlib.import_module({module!r}); "
        "print(' '.join(sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {n.split(".")[0] for n in out.stdout.split()}
