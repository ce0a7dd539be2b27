"""The demo county: a Wen'an-like directory with fictional people and well-known tokens.

Every person and phone number here is invented (names end in （演示）, "demo"; mobiles are in
the unassigned-looking 199 0000 xxxx range). Demo tokens are derived from the person id, so
``gongkai up --demo`` prints the same tokens on every start and tests can use them: never load
the demo directory into a real deployment.

``gongkai up --demo`` loads it before the services start (``load_at_start``, entry-point
group ``gongkai.demo``). Tests seed it with ``await seed_demo(evlog, at)`` and call the API as a
demo person with ``DEMO.headers("finance-maker")``.
"""

from __future__ import annotations

import hashlib
import sys
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, TextIO

from gongkai.calendar import local_date
from gongkai.eventlog import EventLog
from gongkai.events import Actor
from gongkai.tokens import token_hash
from gongkai_intake.adapters.directory_log import LoadReport, apply_directory
from gongkai_intake.domain.directory import DirectorySpec, PersonSpec, RegisterUnit

if TYPE_CHECKING:
    # Only named in load_at_start's signature: ``gongkai directory demo`` seeds the log without
    # the service runtime (faststream, FastAPI, SQLAlchemy: a second of start-up).
    from gongkai.runtime.service import Service

DEMO_ACTOR = Actor(person="gongkai-demo", role="system", unit="system")

#: (code, name, kind, short name used in people's names)
UNITS: tuple[tuple[str, str, str, str], ...] = (
    ("county-office", "文河县人民政府办公室", "county_office", "县政府办"),
    ("finance", "文河县财政局", "department", "财政局"),
    ("housing", "文河县住房保障和房产管理局", "department", "房管局"),
    ("market", "文河县市场监督管理局", "department", "市场监管局"),
    ("education", "文河县教育局", "department", "教育局"),
    ("health", "文河县卫生健康局", "department", "卫健局"),
    ("civil-affairs", "文河县民政局", "department", "民政局"),
    ("hrss", "文河县人力资源和社会保障局", "department", "人社局"),
    ("natural-resources", "文河县自然资源和规划局", "department", "自然资源局"),
    ("environment", "文河县生态环境分局", "department", "生态环境分局"),
    ("transport", "文河县交通运输局", "department", "交通局"),
    ("agriculture", "文河县农业农村局", "department", "农业农村局"),
    ("water", "文河县水务局", "department", "水务局"),
    ("emergency", "文河县应急管理局", "department", "应急局"),
    ("statistics", "文河县统计局", "department", "统计局"),
    ("development-reform", "文河县发展和改革局", "department", "发改局"),
    ("culture-tourism", "文河县文化广电和旅游局", "department", "文旅局"),
    ("donghe-town", "文河县东河镇人民政府", "township", "东河镇"),
    ("xiliu-town", "文河县西柳镇人民政府", "township", "西柳镇"),
    ("liuhe-town", "文河县柳河镇人民政府", "township", "柳河镇"),
    ("nanzhuang-township", "文河县南庄乡人民政府", "township", "南庄乡"),
    ("beipo-township", "文河县北坡乡人民政府", "township", "北坡乡"),
    ("devzone-committee", "文河经济开发区管理委员会", "committee", "开发区"),
    ("machine-tool-market-committee", "文河机床市场管理委员会", "committee", "机床市场"),
    ("farm-committee", "文河县农场管理委员会", "committee", "农场"),
)
ROLE_LABELS: Mapping[str, str] = {
    "maker": "承办人",
    "staff": "审核人",
    "secrecy": "保密员",
    "leader": "主要负责人",
}
#: County office people beyond its four roles: the site readers and the CMS's own account.
OFFICE_PEOPLE: tuple[tuple[str, str], ...] = (
    ("office-reader", "县政府办读网员（演示）"),
    ("office-supervisor", "县政府办督查员（演示）"),
    ("cms", "网站内容管理系统（演示账号）"),
)


def demo_token(person_id: str) -> str:
    """Deterministic and public: good for a demo and tests, never for a real deployment."""
    return "gk_demo_" + hashlib.sha256(f"gongkai demo token/{person_id}".encode()).hexdigest()[:32]


def person_id(unit: str, role: str) -> str:
    return f"{unit}-{role}"


def _people() -> list[tuple[str, str, tuple[tuple[str, str], ...]]]:
    people: list[tuple[str, str, tuple[tuple[str, str], ...]]] = []
    for code, _name, _kind, short in UNITS:
        for role, label in ROLE_LABELS.items():
            people.append((person_id(code, role), f"{short}{label}（演示）", ((code, role),)))
    for pid, name in OFFICE_PEOPLE:
        people.append((pid, name, (("county-office", "office"),)))
    return people


def demo_spec() -> DirectorySpec:
    units = tuple(
        RegisterUnit(
            code=code,
            name=name,
            kind=kind,
            contact_name=f"{short}{ROLE_LABELS['maker']}（演示）",
            contact_mobile=f"1990000{i:04d}",
        )
        for i, (code, name, kind, short) in enumerate(UNITS, 1)
    )
    people = tuple(
        PersonSpec(
            person_id=pid,
            name=name,
            roles=roles,
            token_sha256=token_hash(demo_token(pid)),
            token_hint=demo_token(pid)[-4:],
        )
        for pid, name, roles in _people()
    )
    return DirectorySpec(units=units, people=people)


@dataclass(frozen=True)
class DemoDirectory:
    """Who is who in the demo county, and how to call the API as them."""

    spec: DirectorySpec

    @property
    def tokens(self) -> dict[str, str]:
        return {p.person_id: demo_token(p.person_id) for p in self.spec.people}

    @property
    def units(self) -> tuple[str, ...]:
        return tuple(u.code for u in self.spec.units)

    def person(self, unit: str, role: str) -> str:
        pid = person_id(unit, role) if role != "office" else "office-reader"
        if pid not in self.tokens:
            raise KeyError(f"no demo {role} in {unit}")
        return pid

    def headers(self, person: str, key: str | None = None) -> dict[str, str]:
        """Authorization for ``person`` and an Idempotency-Key (a fresh one unless given)."""
        return {
            "Authorization": f"Bearer {demo_token(person)}",
            "Idempotency-Key": key or str(uuid.uuid4()),
        }


DEMO = DemoDirectory(demo_spec())


def subset(units: Iterable[str]) -> DirectorySpec:
    """The demo directory cut down to some units, their people and the county office's."""
    wanted = {*units, "county-office"}
    unknown = wanted - set(DEMO.units)
    if unknown:
        raise KeyError(f"no demo unit {sorted(unknown)[0]!r}")
    return DirectorySpec(
        units=tuple(u for u in DEMO.spec.units if u.code in wanted),
        people=tuple(p for p in DEMO.spec.people if all(u in wanted for u, _ in p.roles)),
    )


async def seed_demo(
    evlog: EventLog, at: datetime, units: Iterable[str] | None = None
) -> LoadReport:
    """Load the demo directory, or the part of it for ``units`` (tests: fewer events to wait
    for). Idempotent: loading it again records nothing."""
    spec = DEMO.spec if units is None else subset(units)
    return await apply_directory(evlog, spec, actor=DEMO_ACTOR, now=at, today=local_date(at))


def print_tokens(out: TextIO) -> None:
    """The demo tokens, to a terminal (never to the logs)."""
    roles = {p.person_id: ", ".join(f"{r}@{u}" for u, r in p.roles) for p in DEMO.spec.people}
    print("demo directory loaded; bearer tokens (demo only, public):", file=out)
    for pid, token in DEMO.tokens.items():
        print(f"  {pid:<40} {roles[pid]:<45} {token}", file=out)
    out.flush()


async def load_at_start(services: Sequence[Service], now: datetime) -> None:
    """``gongkai up --demo``: the county recorded as intake, and its tokens to the terminal.

    The host calls it before the services start (they then catch up on it in batches, instead
    of applying each event as it is recorded): it records on a connection of intake's own,
    signed with intake's key, and closes it.
    """
    intake = next((s for s in services if s.name == "intake"), None)
    if intake is None:
        raise RuntimeError("--demo needs the intake service: it records the directory")
    evlog = await intake.open_log()
    try:
        await _load(evlog, intake, now)
    finally:
        await evlog.close()


async def _load(evlog: EventLog, intake: Service, now: datetime) -> None:
    report = await seed_demo(evlog, now)
    intake.log.info("demo_directory_loaded", events=report.events)
    # The year of site history before today, so every as-of question of that year has an
    # answer (imported again on every start: it records nothing new).
    from gongkai_demo.history import import_demo_history

    history = await import_demo_history(evlog, now)
    intake.log.info(
        "demo_history_imported", imported=history.imported, already_present=history.present
    )
    # stdout, not the log: tokens must never reach a log collector.
    print_tokens(sys.stdout)
