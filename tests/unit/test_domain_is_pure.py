"""Every service's ``domain/`` imports no NATS client, no web framework and no database, and
reads no clock, no chance and no file.

The deciders and rules are pure (facts in, events or a refusal out); the runner, the log and
the read models are adapters. Checked in a fresh interpreter, one domain module at a time, so
one module's adapters cannot hide behind another's imports.
"""

from __future__ import annotations

import ast
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


#: Calls that read a clock, chance or the machine: a rule is given the day and the time (the
#: runner's ``now``, the caller's ``gongkai.calendar.today``), never looks them up.
CLOCKS = {
    ("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today"),
    ("time", "time"), ("time", "monotonic"), ("time", "perf_counter"), ("uuid", "uuid1"),
    ("uuid", "uuid4"), ("os", "getenv"), ("os", "urandom"),
}


def test_no_domain_module_reads_a_clock() -> None:
    bad = []
    for path in sorted(ROOT.glob("services/*/src/*/domain/*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names]
                module = node.module if isinstance(node, ast.ImportFrom) else None
                if "random" in names or module in ("random", "secrets") or "secrets" in names:
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: imports chance")
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            if isinstance(f, ast.Name) and f.id == "open":
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: open()")
            if (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name)
                    and (f.value.id, f.attr) in CLOCKS):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: {f.value.id}.{f.attr}()")
    assert not bad, "domain code reads the clock, chance or the machine:\n" + "\n".join(bad)
