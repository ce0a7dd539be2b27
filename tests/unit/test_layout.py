"""The layout's rules, read from the code itself (``ast``, not a text search: "review"
is also a word of the domain, and an import in a docstring is not an import).

* A service imports no other service's package: services speak only through the log's events,
  whose contracts are shared (``gongkai.events.contracts``), so one can be deployed, replaced or
  scaled without the others' code.
* ``shared/`` imports no service package and names none in a string (which is how
  ``importlib.import_module`` would reach one): shared code finds the services through entry
  points, never by name. The demo package (``demo/``) drives every service, so neither a
  service nor shared/ may import it either.
* One shape for every service (issue 15, docs/architecture.md): ``domain/``, ``adapters/``,
  ``entrypoints/``, ``service.py`` and ``bootstrap.py``, and the layers import downwards only:
  the domain nothing of its service but the domain, adapters no entrypoint, the service no
  entrypoint, and nothing the composition root.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: service folder -> its package, as laid out: services/<name>/src/gongkai_<name>/
SERVICES = {
    p.parts[-3]: p.name for p in ROOT.glob("services/*/src/gongkai_*") if p.is_dir()
}
DEMO = "gongkai_demo"


def _sources(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def _imported(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, module) for every absolute import; relative ones stay inside their package."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def _strings(tree: ast.Module) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def _where(path: Path, line: int) -> str:
    return f"{path.relative_to(ROOT)}:{line}"


def test_the_four_services_are_found() -> None:
    # Guards the two tests below against passing because the glob found nothing.
    assert SERVICES == {
        "intake": "gongkai_intake", "review": "gongkai_review",
        "freshness": "gongkai_freshness", "accountability": "gongkai_accountability",
    }


def test_no_service_imports_another() -> None:
    bad = []
    for name, package in SERVICES.items():
        others = (set(SERVICES.values()) - {package}) | {DEMO}
        for path in _sources(ROOT / "services" / name / "src"):
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            for line, module in _imported(tree):
                if module.split(".")[0] in others:
                    bad.append(f"{_where(path, line)}: service {name} imports {module}")
    assert not bad, (
        "services must not import each other (only shared/ and the event contracts):\n"
        + "\n".join(bad)
    )


def test_shared_names_no_service() -> None:
    packages = set(SERVICES.values()) | {DEMO}
    bad = []
    for path in _sources(ROOT / "shared" / "src"):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for line, module in _imported(tree):
            if module.split(".")[0] in packages:
                bad.append(f"{_where(path, line)}: imports {module}")
        for line, text in _strings(tree):
            named = sorted(p for p in packages if p in text)
            if named:
                bad.append(f"{_where(path, line)}: a string names {', '.join(named)}")
    assert not bad, (
        "shared/ must not import or name a service package (find services through entry "
        "points):\n" + "\n".join(bad)
    )


#: What a service's package holds at its top, the same names in every service.
SHAPE = {
    "__init__.py", "py.typed", "domain", "adapters", "entrypoints", "service.py", "bootstrap.py"
}
#: layer -> the layers of its own service it may not import (``bootstrap`` wires them all).
BELOW = {
    "domain": {"adapters", "entrypoints", "service", "bootstrap"},
    "adapters": {"entrypoints", "service", "bootstrap"},
    "service": {"entrypoints", "bootstrap"},
    "entrypoints": {"bootstrap"},
}


def test_every_service_has_the_one_shape() -> None:
    found = {
        name: sorted(
            p.name for p in (ROOT / "services" / name / "src" / package).iterdir()
            if p.name != "__pycache__"
        )
        for name, package in SERVICES.items()
    }
    assert found == {name: sorted(SHAPE) for name in SERVICES}


def test_layers_import_downwards_only() -> None:
    bad = []
    for name, package in SERVICES.items():
        top = ROOT / "services" / name / "src" / package
        for path in _sources(top):
            layer = path.relative_to(top).parts[0].removesuffix(".py")
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            for line, module in _imported(tree):
                parts = module.split(".")
                if parts[0] == package and len(parts) > 1 and parts[1] in BELOW.get(layer, ()):
                    bad.append(f"{_where(path, line)}: {layer} imports {module}")
    assert not bad, "a layer imports one above it:\n" + "\n".join(bad)
