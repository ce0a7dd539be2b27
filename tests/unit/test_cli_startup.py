"""``gongkai``'s parsers are built on every start, ``--help`` included: they must not import the
event contracts, the database layer, the web stack, NATS or the crypto library (issue #16:
``gongkai --help`` under 0.5 s; it took 2.2 s while they did). ``bench/bench_cli.py`` times it;
this test holds the cause, which does not depend on the machine's speed."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from gongkai.cli import LazyCommand

HEAVY = (
    "pydantic",
    "sqlalchemy",
    "fastapi",
    "starlette",
    "faststream",
    "nats",
    "cryptography",
    "rich",
    "yaml",
    "chinese_calendar",
    "httpx",
    "asyncio",
)


def loaded_after(code: str) -> list[str]:
    probe = (
        "import sys, json\n"
        f"{code}\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True
    ).stdout
    return list(json.loads(out.splitlines()[-1]))


def test_building_every_parser_imports_nothing_heavy() -> None:
    assert loaded_after("from gongkai.cli import build_parser; build_parser()") == []


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["audit", "--help"], ["freshness", "status", "--help"], ["import", "--help"]],
)
def test_help_imports_nothing_heavy(argv: list[str]) -> None:
    code = (
        "from gongkai.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass"
    )
    assert loaded_after(code) == []


def test_every_lazy_command_finds_its_function() -> None:
    """``lazy`` resolves ``module:function`` when the command runs: a wrong name would only
    fail then, so every registered command's target is resolved here."""
    targets = _lazy_commands()
    assert len(targets) > 15
    for t in targets:
        assert callable(t.resolve()), t.target


def test_the_audit_commands_leave_the_pdf_library_to_the_console() -> None:
    """Every ``gongkai audit`` run imports its commands module; the PDF library and its font
    tools took a second of it (and of each service start) before the console imported them
    only when a form is printed."""
    probe = (
        "import sys, json\n"
        "import gongkai_accountability.entrypoints.commands\n"
        "import gongkai_accountability.bootstrap\n"
        "print(json.dumps(sorted(m for m in ('fpdf', 'fontTools') if m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True
    ).stdout
    assert json.loads(out.splitlines()[-1]) == []



#: What runs a service and nothing else: the web stack, the bus framework, the database layer.
SERVICE_STACK = ("fastapi", "starlette", "uvicorn", "faststream", "sqlalchemy", "alembic")


def stack_loaded_by(steps: dict[str, str]) -> dict[str, list[str]]:
    """Run each step's code in turn in one new interpreter: what of the service stack each step
    loaded first (a step that loads nothing of it is left out)."""
    probe = "import json, sys\nloaded = {}\n"
    for name, code in steps.items():
        probe += (
            f"before = {{m for m in {SERVICE_STACK!r} if m in sys.modules}}\n"
            f"{code}\n"
            f"new = sorted(m for m in {SERVICE_STACK!r} if m in sys.modules and m not in before)\n"
            f"if new:\n    loaded[{name!r}] = new\n"
        )
    probe += "print(json.dumps(loaded))"
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, timeout=120
    ).stdout
    return dict(json.loads(out.splitlines()[-1]))


def _lazy_commands() -> list[LazyCommand]:
    """Every command of the ``gongkai`` parser tree that names its function by ``module:name``."""
    from gongkai.cli import LazyCommand, build_parser

    found: list[LazyCommand] = []

    def walk(parser: argparse.ArgumentParser) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    walk(sub)
        func = parser.get_default("func")
        if isinstance(func, LazyCommand):
            found.append(func)

    walk(build_parser())
    return found


def _command_modules() -> list[str]:
    return sorted({c.target.partition(":")[0] for c in _lazy_commands()})


def test_the_command_modules_leave_the_service_stack_to_the_services() -> None:
    """The tools read or write the log; ``people token`` took 1.3 s of CPU when it imported
    FastAPI and SQLAlchemy for a hash function (``gongkai.directory``). What needs the stack
    (``up``, ``service``, ``audit rebuild``'s database) imports it inside the command."""
    modules = _command_modules()
    assert len(modules) >= 5
    assert stack_loaded_by({m: f"import {m}" for m in modules}) == {}


def test_a_tool_that_finds_no_nats_never_loaded_the_service_stack() -> None:
    """The runs themselves, not only their modules: ``events tail`` imported the host (the
    whole service stack) inside the command to ask whether NATS answers."""
    from gongkai.natsserver import free_port

    url = f"nats://127.0.0.1:{free_port()}"  # nothing listens there
    runs = [
        ["events", "tail", "--no-follow"],
        ["people", "tokens", "finance-maker"],
        ["audit", "as-of", "2026-03-01"],
        ["freshness", "status"],
    ]
    steps = {
        " ".join(argv): (
            "from gongkai.cli import main\n"
            "try:\n"
            f"    main({[*argv, '--nats-url', url]!r})\n"
            "except SystemExit:\n"
            "    pass"
        )
        for argv in runs
    }
    assert stack_loaded_by(steps) == {}
