"""`gongkai service [NAME]`: an image built from deploy/Dockerfile carries one service and runs
`gongkai service` with no name; a development environment with all four must be told which."""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import EntryPoint
from typing import Any

import pytest

from gongkai import cli
from gongkai.runtime import host


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> list[Sequence[str] | None]:
    calls: list[Sequence[str] | None] = []

    def fake_run(settings: Any, *, only: Sequence[str] | None = None) -> int:
        calls.append(only)
        return 0

    monkeypatch.setattr(host, "run", fake_run)
    return calls


def _installed(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    eps = [EntryPoint(n, f"gongkai_{n}.bootstrap:build", "gongkai.services") for n in names]
    real = cli.entry_points
    monkeypatch.setattr(
        cli, "entry_points", lambda group: eps if group == "gongkai.services" else real(group=group)
    )


def test_a_named_service_runs(ran: list[Sequence[str] | None]) -> None:
    assert cli.main(["service", "review"]) == 0
    assert ran == [["review"]]


def test_no_name_runs_the_one_installed_service(
    monkeypatch: pytest.MonkeyPatch, ran: list[Sequence[str] | None]
) -> None:
    _installed(monkeypatch, "freshness")
    assert cli.main(["service"]) == 0
    assert ran == [["freshness"]]


@pytest.mark.parametrize("names", [(), ("intake", "review", "freshness", "accountability")])
def test_no_name_with_none_or_several_installed_is_refused(
    monkeypatch: pytest.MonkeyPatch,
    ran: list[Sequence[str] | None],
    capsys: pytest.CaptureFixture[str],
    names: tuple[str, ...],
) -> None:
    _installed(monkeypatch, *names)
    assert cli.main(["service"]) == 2
    assert ran == []
    assert "name the service to run" in capsys.readouterr().err


def test_a_named_service_imports_only_its_own_package() -> None:
    """``gongkai service review`` builds review alone, and imports no other service's package
    (their routes, consoles and deciders were a tenth of each restarted process's start)."""
    import json
    import subprocess
    import sys

    probe = (
        "import json, sys\n"
        "from gongkai.runtime.host import Host\n"
        "from gongkai.runtime.settings import Settings\n"
        "built = Host(Settings(), only=['review']).build('nats://127.0.0.1:4222')\n"
        "print(json.dumps([[type(s).__module__ for s in built],\n"
        "    sorted(m for m in sys.modules if m.partition('.')[0] in\n"
        "        ('gongkai_intake', 'gongkai_freshness', 'gongkai_accountability'))]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    services, others = json.loads(out.splitlines()[-1])
    assert len(services) == 1 and services[0].startswith("gongkai_review")
    assert others == []


def test_an_unknown_service_names_the_installed_ones() -> None:
    from gongkai.runtime.settings import Settings

    with pytest.raises(host.StartupError, match="unknown service 'reveiw'; installed: "
                       "accountability, freshness, intake, review"):
        host.Host(Settings(), only=["reveiw"]).build("nats://127.0.0.1:4222")
