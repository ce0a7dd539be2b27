"""Who may write: every write route of every service, table-driven, on the whole platform.

For each write route (the table must list every non-GET route the four services serve):
nobody, an unknown token, a credential that is not a bearer token, and a person of another
unit (or, for the county office's routes, a unit's leader) are refused — 401, 401, 401, 403 —
and nothing is recorded; then the right person sends the same request and it is accepted, so
the refusals are about who asks, not about the request. A second table tries to act above
one's role (a maker approving, a leader granting themselves the office role, the office
signing for a unit ...). Last, the stores: every service keeps tokens only as sha256, and no
token is anywhere in any service's database or in the event log.

Single refusals are also checked next to each route's own tests; this is the one place that
covers them all, so a new route without a row fails here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import inspect, select

from gongkai.events import Actor, digest, new_event
from gongkai.events.contracts.freshness import ColumnStale
from gongkai.events.contracts.intake import PostPublished
from gongkai.runtime.host import make_app
from gongkai.tokens import token_hash
from gongkai_demo.county import DEMO, demo_token, seed_demo
from tests.builders import post_submitted
from tests.conftest import PLATFORM_T0, Platform

MAKER = Actor(person="finance-maker", role="maker", unit="finance")
CMS = Actor(person="cms", role="office", unit="county-office")
SYSTEM = Actor(person="freshness", role="system", unit="system")
TITLE, BODY = "关于印发《财政专项资金管理办法》的通知", "正文"
CONTENT = digest({"title": TITLE, "body": BODY, "attachments": []})
NEW_POST = {
    "unit": "finance",
    "column": "normative_documents",
    "title": TITLE,
    "body": BODY,
    "important_kind": "normative_document",
    "origin": "produced",
    "channel": "website",
    "information_date": "2026-02-27",
}
UNIT = {
    "code": "water",
    "name": "文河县水务局",
    "kind": "department",
    "contact_name": "水务局承办人（演示）",
    "contact_mobile": "19900009999",
}


@dataclass(frozen=True)
class Write:
    """One write route: a request the right person may make, and who else tries it."""

    method: str
    path: str
    body: dict[str, Any]
    right: str
    other: str
    ok: int = 200


#: Every write route. ``{violation_id}`` and ``{finding_id}`` are filled in as the test goes.
WRITES: tuple[Write, ...] = (
    # intake
    Write("POST", "/posts", NEW_POST, "finance-maker", "education-maker", 201),
    Write(
        "POST",
        "/posts/P-rev/revisions",
        {"title": TITLE, "body": "改过的正文", "information_date": "2026-02-27"},
        "finance-maker",
        "education-maker",
        201,
    ),
    Write("POST", "/posts/P-wd/withdrawal", {"reason": "重复提交"}, "finance-leader",
          "education-leader"),
    Write(
        "POST",
        "/publications",
        {
            "post_id": "P-pub",
            "unit": "finance",
            "column": "normative_documents",
            "url": "https://www.example.gov.cn/finance/p-pub.html",
            "online_at": "2026-03-02T08:30:00+08:00",
            "content_digest": CONTENT,
        },
        "cms",
        "education-maker",
        201,
    ),
    Write(
        "POST",
        "/publications/pub-seeded-2/removal",
        {"removed_at": "2026-03-02T08:40:00+08:00", "reason": "撤下"},
        "finance-leader",
        "education-leader",
    ),
    Write("POST", "/units", UNIT, "office-reader", "finance-leader", 201),
    Write(
        "POST",
        "/units/finance/leadership-changes",
        {"changed_on": "2026-02-27", "summary": "副局长分工调整"},
        "finance-leader",
        "education-leader",
    ),
    Write("POST", "/people", {"person_id": "newcomer", "name": "新同事（演示）"},
          "office-reader", "finance-leader", 201),
    Write("POST", "/people/newcomer/roles", {"unit": "finance", "role": "maker"},
          "office-reader", "finance-leader"),
    Write("POST", "/people/newcomer/roles/revocation", {"unit": "finance", "role": "maker"},
          "office-reader", "finance-leader"),
    Write("POST", "/people/newcomer/tokens/revocation", {}, "office-reader", "finance-leader"),
    # review
    Write(
        "POST",
        "/posts/P-sign/signatures",
        {"stage": "leader", "decision": "agree", "content_digest": CONTENT},
        "finance-leader",
        "education-leader",
        201,
    ),
    Write("PUT", "/units/finance/review-policy", {"staff_stage": "always"}, "finance-leader",
          "education-leader"),
    # freshness
    Write(
        "PUT",
        "/units/finance/columns/leaders_activities/visibility",
        {"visibility": "hidden", "reason": "本单位无此职能"},
        "finance-leader",
        "education-leader",
    ),
    # accountability
    Write("POST", "/supervisions", {"unit": "finance", "column": "work_arrangements"},
          "office-supervisor", "finance-leader", 201),
    Write(
        "POST",
        "/findings",
        {"publication_id": "pub-seeded", "kind": "typo", "description": "标题有错别字"},
        "office-reader",
        "finance-leader",
        201,
    ),
    Write("POST", "/findings/{finding_id}/confirmation", {"note": "属实"}, "office-supervisor",
          "finance-leader"),
    Write("POST", "/violations/{violation_id}/rectification", {"reason": "已撤下并整改"},
          "office-supervisor", "finance-leader", 201),
)

#: (what, method, path, body, who): acting above one's role or for another unit.
ABOVE_ROLE: tuple[tuple[str, str, str, dict[str, Any], str], ...] = (
    ("maker approves", "POST", "/posts/P-sign2/signatures",
     {"stage": "leader", "decision": "agree", "content_digest": CONTENT}, "finance-maker"),
    ("staff approves", "POST", "/posts/P-sign2/signatures",
     {"stage": "leader", "decision": "agree", "content_digest": CONTENT}, "finance-staff"),
    ("secrecy officer approves", "POST", "/posts/P-sign2/signatures",
     {"stage": "leader", "decision": "agree", "content_digest": CONTENT}, "finance-secrecy"),
    ("the office approves for a unit", "POST", "/posts/P-sign2/signatures",
     {"stage": "leader", "decision": "agree", "content_digest": CONTENT}, "office-supervisor"),
    ("another unit's staff opinion", "POST", "/posts/P-sign2/signatures",
     {"stage": "staff", "decision": "agree", "content_digest": CONTENT}, "education-staff"),
    ("leader submits (would approve own post)", "POST", "/posts", NEW_POST, "finance-leader"),
    ("secrecy officer submits", "POST", "/posts", NEW_POST, "finance-secrecy"),
    ("submits for another unit", "POST", "/posts", {**NEW_POST, "unit": "education"},
     "finance-maker"),
    ("leader grants themselves the office role", "POST", "/people/finance-leader/roles",
     {"unit": "county-office", "role": "office"}, "finance-leader"),
    ("maker makes themselves leader", "POST", "/people/finance-maker/roles",
     {"unit": "finance", "role": "leader"}, "finance-maker"),
    ("maker sets the review policy", "PUT", "/units/finance/review-policy",
     {"staff_stage": "important_only"}, "finance-maker"),
    ("maker hides a column", "PUT", "/units/finance/columns/work_arrangements/visibility",
     {"visibility": "hidden", "reason": "不想更新"}, "finance-maker"),
    ("unit leader reports a finding", "POST", "/findings",
     {"publication_id": "pub-seeded", "kind": "typo", "description": "x"}, "finance-leader"),
    ("unit leader rectifies its own violation", "POST",
     "/violations/{violation_id}/rectification", {"reason": "已整改"}, "finance-leader"),
    ("a unit's maker issues supervision", "POST", "/supervisions",
     {"unit": "finance", "column": "work_arrangements"}, "finance-maker"),
)

NOT_ALLOWED = (
    ("no token", {}, 401),
    ("unknown token", {"Authorization": "Bearer gk_not_a_token_anyone_holds"}, 401),
    ("not a bearer token", {"Authorization": "Basic ZmluYW5jZTpsZWFkZXI="}, 401),
    ("empty bearer", {"Authorization": "Bearer "}, 401),
)


@dataclass
class Ids:
    values: dict[str, str] = field(default_factory=dict)

    def path(self, template: str) -> str:
        return template.format(**self.values) if "{" in template else template


async def seed(platform: Platform) -> None:
    # The county joins before the seeded items go online (earlier items predate its duties).
    joined = PLATFORM_T0 - timedelta(hours=3)
    await seed_demo(platform.evlog, joined, units=["finance", "education"])
    events = []
    for post in ("P-rev", "P-wd", "P-pub", "P-sign", "P-sign2"):
        events.append(
            new_event(
                post_submitted(
                    title=TITLE,
                    body=BODY,
                    information_date=date(2026, 2, 27),
                    content_digest=CONTENT,
                ),
                aggregate_id=post,
                actor=MAKER,
                command_id=f"security-{post}",
                recorded_at=PLATFORM_T0,
            )
        )
    for pub in ("pub-seeded", "pub-seeded-2"):
        events.append(  # online without review: accountability records a violation
            new_event(
                PostPublished(
                    publication_id=pub,
                    unit="finance",
                    column="normative_documents",
                    url=f"https://www.example.gov.cn/finance/{pub}.html",
                    online_at=PLATFORM_T0 - timedelta(hours=2),
                    content_digest="c" * 64,
                ),
                aggregate_id=pub,
                actor=CMS,
                command_id=f"security-{pub}",
                recorded_at=PLATFORM_T0,
            )
        )
    events.append(  # a stale column: a supervision case the office may issue a notice for
        new_event(
            ColumnStale(
                unit="finance",
                column="work_arrangements",
                rule_set="wenan-2018",
                rule="fortnightly",
                rule_kind="periodic",
                due_date=date(2026, 2, 20),
                overdue_days=6,
                episode="security",
            ),
            aggregate_id="finance--work_arrangements",
            actor=SYSTEM,
            command_id="security-stale",
            recorded_at=PLATFORM_T0,
        )
    )
    for e in events:
        await platform.evlog.append([e])
    await platform.settle()
    await platform.services["accountability"].settle()  # type: ignore[attr-defined]
    await platform.settle()  # what accountability recorded, read back by every projection


async def violation_of(platform: Platform, publication: str) -> str:
    """The violation accountability recorded for a publication nobody reviewed."""
    office = DEMO.headers("office-supervisor")
    violations = (await platform.client.get("/violations", headers=office)).json()
    return next(v["violation_id"] for v in violations if v["publication_id"] == publication)


async def people_recorded_since(platform: Platform, seq: int) -> list[str]:
    """Events by a person (not a service's own reaction) after stream sequence ``seq``."""
    if await platform.evlog.last_sequence() <= seq:
        return []
    return [
        f"{r.envelope.type} by {r.envelope.actor.person}"
        async for r in platform.evlog.replay(from_seq=seq + 1)
        if r.envelope.actor.role != "system"
    ]


async def send(
    platform: Platform, method: str, path: str, body: dict[str, Any], headers: dict[str, str]
) -> tuple[int, dict[str, Any], list[str]]:
    before = await platform.evlog.last_sequence()
    r = await platform.client.request(method, path, json=body, headers=headers)
    # Reactions to an accepted write may follow it; only a refusal must leave nothing.
    recorded = await people_recorded_since(platform, before) if r.status_code >= 400 else []
    return r.status_code, r.json() if r.content else {}, recorded


def write_routes(platform: Platform) -> set[tuple[str, str]]:
    out = set()
    for svc in platform.services.values():
        for path, ops in make_app([svc]).openapi()["paths"].items():
            out |= {(m.upper(), path) for m in ops if m != "get"}
    return out


def template(path: str) -> str:
    """/posts/P-rev/revisions -> /posts/{post_id}/revisions, as the OpenAPI names them."""
    rules = [
        (r"^/posts/[^/]+/", "/posts/{post_id}/"),
        (r"^/publications/[^/]+/", "/publications/{publication_id}/"),
        (r"^/units/[^/]+/columns/[^/]+/", "/units/{code}/columns/{column}/"),
        (r"^/units/[^/]+/leadership", "/units/{unit}/leadership"),
        (r"^/units/[^/]+/review-policy", "/units/{unit}/review-policy"),
        (r"^/people/[^/]+/", "/people/{person_id}/"),
    ]
    for pattern, repl in rules:
        path = re.sub(pattern, repl, path)
    return path


async def test_every_write_route_refuses_strangers_and_other_units(platform: Platform) -> None:
    listed = {(w.method, template(w.path)) for w in WRITES}
    assert listed == write_routes(platform), "a write route without a row, or a stale row"
    await seed(platform)
    # pub-seeded stays online (pub-seeded-2 is the one removed): its violation is not put right
    # by the removal before the office's rectification row comes.
    ids = Ids({"violation_id": await violation_of(platform, "pub-seeded")})
    problems: list[str] = []
    for w in WRITES:
        if "{finding_id}" in w.path and "finding_id" not in ids.values:
            problems.append(f"{w.path}: no finding to confirm")
            continue
        path = ids.path(w.path)
        tries = [(what, {**h, "Idempotency-Key": f"k-{what}"}, code) for what, h, code in
                 NOT_ALLOWED]
        tries.append((f"{w.other} (another unit)", DEMO.headers(w.other), 403))
        for what, headers, expected in tries:
            status, body, recorded = await send(platform, w.method, path, w.body, headers)
            if status != expected:
                problems.append(f"{w.method} {path} as {what}: {status}, wanted {expected}")
            if recorded:
                problems.append(f"{w.method} {path} as {what} was refused but recorded {recorded}")
            if expected == 401 and body.get("field") != "Authorization":
                problems.append(f"{w.method} {path} as {what}: problem names {body.get('field')}")
        status, body, _ = await send(platform, w.method, path, w.body, DEMO.headers(w.right))
        if status != w.ok:
            problems.append(f"{w.method} {path} as {w.right}: {status} {body}, wanted {w.ok}")
        if "finding_id" in body:
            ids.values["finding_id"] = body["finding_id"]
        # The next row may read what this one recorded (a finding to confirm) from a projection.
        await platform.settle()
    assert not problems, "\n".join(problems)


async def test_nobody_acts_above_their_role_or_for_another_unit(platform: Platform) -> None:
    await seed(platform)
    ids = Ids({"violation_id": await violation_of(platform, "pub-seeded")})
    problems = []
    for what, method, path, body, who in ABOVE_ROLE:
        status, answer, recorded = await send(
            platform, method, ids.path(path), body, DEMO.headers(who)
        )
        if status != 403:
            problems.append(f"{what} ({who}): {status} {answer}")
        if recorded:
            problems.append(f"{what} ({who}) was refused but recorded {recorded}")
    assert not problems, "\n".join(problems)
    # And the right person still may: the refusals were about who asked.
    status, answer, _ = await send(
        platform,
        "POST",
        "/posts/P-sign2/signatures",
        {"stage": "leader", "decision": "agree", "content_digest": CONTENT},
        DEMO.headers("finance-leader"),
    )
    assert status == 201, answer


async def test_tokens_are_stored_only_as_sha256(platform: Platform) -> None:
    await seed(platform)
    tokens = {pid: demo_token(pid) for pid in DEMO.tokens}
    hashes = {token_hash(t) for t in tokens.values()}
    # Every service's own copy of the directory holds hashes, and nothing else anywhere in its
    # database holds a token (not the idempotency store, not a read model).
    for name, svc in platform.services.items():
        with svc.engine.connect() as conn:
            column = svc.directory_projection.tokens.c.token_sha256  # type: ignore[attr-defined]
            stored = {row[0] for row in conn.execute(select(column))}
            assert stored and stored <= hashes, name
            assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in stored), name
            for table in inspect(conn).get_table_names():
                rows = conn.exec_driver_sql(f'SELECT * FROM "{table}"')  # our own table names
                text = " ".join(str(row) for row in rows)
                assert "gk_" not in text, f"{name}.{table} holds something token-like"
    # The log itself: TokenIssued carries the hash and a four-character hint, never the token.
    async for rec in platform.evlog.replay():
        assert b"gk_" not in rec.data, f"a token in event {rec.seq} ({rec.envelope.type})"
