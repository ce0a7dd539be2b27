"""Every identifier at every entry point is checked whole: a bad one is a 4xx problem naming it.

An identifier is 1-128 characters of ``A-Z a-z 0-9 _ -``, the whole value (``check_token``, a
full match). It becomes a NATS subject token (``gongkai.subjects.token``), so a newline, ``.``,
``*``, ``>`` or whitespace in it would make NATS refuse the subject (a 503), widen a filter or
address another subject; a list filter with such a value would answer an empty list as if
nothing matched. Here every entry point of the four services meets each of them:

* HTTP path and query parameters: enumerated from each service's own OpenAPI document (every
  path parameter is an identifier; so is every string query parameter that is not an enum, a
  date or another format), so a new route is covered without being listed here;
* HTTP request bodies: every body field that names an identifier (``unit``, ``column``,
  ``code``, ``*_id``), again from the OpenAPI document;
* the bus commands on ``gk.cmd.intake.<command>``: the route's path parameters, carried as
  body fields, and the body's identifier fields.

Each answer must be a 4xx RFC 9457 problem whose ``field`` names the parameter, and nothing
must be recorded. A value that empties a path segment or adds one (``""``, ``../x``) never
reaches the route at all: the router answers 404 or 405, or redirects ``/findings/`` to the
collection ``/findings`` (a 307), which is all that is checked for those.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import nats
import pytest

from gongkai import subjects
from gongkai.events import InvalidIdentifier, check_token, is_token
from gongkai.identifiers import SUBJECT_SAFE_ID
from gongkai.runtime.host import make_app
from gongkai.runtime.http import PROBLEM
from gongkai_demo.county import DEMO, seed_demo
from gongkai_intake.entrypoints.api import IntakeApp
from tests.conftest import PLATFORM_T0, Platform

#: What must not pass for an identifier, by name (the test ids say which one failed).
BAD: dict[str, str] = {
    "trailing-newline": "d\n",
    "inner-newline": "d\nx",
    "carriage-return": "d\r",
    "dot": "d.x",
    "star": "d*",
    "greater-than": "d>",
    "space": "d x",
    "tab": "d\tx",
    "dotdot-slash": "../x",
    "empty": "",
    "too-long": "x" * 129,
}
#: Values that change the path's shape rather than a segment's value: the router refuses them.
RESHAPE = {"../x", ""}
#: Who asks: a person of the county office, so that every request is authenticated.
CALLER = "office-supervisor"
#: A valid value for any identifier the request needs besides the one under test.
GOOD = "finance"
ID_NAMES = {"unit", "column", "code", "rule_set", "status"}
#: Body fields named like ids that are not: a publication report's ``post_id`` is the
#: reporter's claim, kept verbatim in ``reported_post_id`` (docs/intake.md) and never made a
#: subject token; refusing it would lose the fact that something went online.
CLAIMS = {("POST", "/publications", "post_id"), ("report_publication", "post_id")}

#: A valid body per operation that takes one, so the identifier under test is the only fault.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/posts"): {
        "unit": "finance",
        "column": "normative_documents",
        "title": "关于印发《文河县政府采购管理办法》的通知",
        "body": "正文",
        "information_date": "2026-02-27",
    },
    ("POST", "/posts/{post_id}/revisions"): {
        "title": "t",
        "body": "b",
        "information_date": "2026-03-01",
    },
    ("POST", "/posts/{post_id}/withdrawal"): {"reason": "r"},
    ("POST", "/publications"): {
        "post_id": "P-x",
        "unit": "finance",
        "column": "normative_documents",
        "url": "https://www.example.gov.cn/x.html",
        "online_at": "2026-03-02T08:00:00+08:00",
        "content_digest": "c" * 64,
    },
    ("POST", "/publications/{publication_id}/removal"): {
        "removed_at": "2026-03-02T08:00:00+08:00",
        "reason": "r",
    },
    ("POST", "/units"): {
        "code": "newunit",
        "name": "新单位",
        "kind": "department",
        "contact_name": "联系人",
        "contact_mobile": "13800138000",
    },
    ("POST", "/units/{unit}/leadership-changes"): {"changed_on": "2026-03-01", "summary": "s"},
    ("POST", "/people"): {"person_id": "newperson", "name": "新人"},
    ("POST", "/people/{person_id}/roles"): {"unit": "finance", "role": "maker"},
    ("POST", "/people/{person_id}/roles/revocation"): {"unit": "finance", "role": "maker"},
    ("POST", "/posts/{post_id}/signatures"): {
        "stage": "leader",
        "decision": "agree",
        "content_digest": "a" * 64,
    },
    ("PUT", "/units/{unit}/review-policy"): {"staff_stage": "important_only"},
    ("PUT", "/units/{code}/columns/{column}/visibility"): {"visibility": "kept", "reason": "r"},
    ("POST", "/violations/{violation_id}/rectification"): {"reason": "r"},
    ("POST", "/supervisions"): {"unit": "finance", "column": "leaders_activities"},
    ("POST", "/findings"): {"post_id": "P-x", "kind": "typo", "description": "d"},
    ("POST", "/findings/{finding_id}/confirmation"): {},
    ("POST", "/people/{person_id}/tokens/revocation"): {},
}
#: The bus commands' bodies: the HTTP route's body (their path parameters are added per case).
COMMAND_BODIES: dict[str, dict[str, Any]] = {
    "submit_post": BODIES[("POST", "/posts")],
    "revise_post": BODIES[("POST", "/posts/{post_id}/revisions")],
    "withdraw_post": BODIES[("POST", "/posts/{post_id}/withdrawal")],
    "report_publication": BODIES[("POST", "/publications")],
    "remove_publication": BODIES[("POST", "/publications/{publication_id}/removal")],
    "register_unit": BODIES[("POST", "/units")],
    "register_person": BODIES[("POST", "/people")],
    "grant_role": BODIES[("POST", "/people/{person_id}/roles")],
    "revoke_role": BODIES[("POST", "/people/{person_id}/roles/revocation")],
    "record_leadership_change": BODIES[("POST", "/units/{unit}/leadership-changes")],
    "revoke_tokens": BODIES[("POST", "/people/{person_id}/tokens/revocation")],
}


def encode(value: str) -> str:
    """A path segment as a client sends it: every byte but letters and digits escaped."""
    return quote(value, safe="")


def is_id_name(name: str) -> bool:
    return name in ID_NAMES or name.endswith("_id")


def _string_schema(schema: dict[str, Any]) -> dict[str, Any] | None:
    """The string branch of a (possibly nullable) parameter or field schema, or None."""
    if schema.get("type") == "string":
        return schema
    for branch in schema.get("anyOf", []):
        if branch.get("type") == "string":
            return dict(branch)
    return None


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref:
        return _resolve(doc, doc["components"]["schemas"][ref.rsplit("/", 1)[1]])
    return schema


@dataclass(frozen=True)
class Case:
    """One request with one bad identifier in it, and the field the problem must name."""

    where: str
    method: str
    url: str
    field: str
    params: dict[str, str] | None = None
    body: dict[str, Any] | None = None
    reshapes: bool = False


def http_cases(doc: dict[str, Any]) -> tuple[list[Case], list[str]]:
    """Every identifier of every operation of one service, each with every bad value; and
    what is wrong with the document itself (an identifier declared without the pattern, an
    operation whose body this test does not know)."""
    cases: list[Case] = []
    wrong: list[str] = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if "health" in (op.get("tags") or []):
                continue
            method = method.upper()
            key = (method, path)
            body_schema = None
            if "requestBody" in op:
                body_schema = _resolve(
                    doc, op["requestBody"]["content"]["application/json"]["schema"]
                )
                if key not in BODIES:
                    wrong.append(f"{method} {path}: add a valid body to BODIES")
                    continue
            body = BODIES.get(key)
            params = op.get("parameters", [])
            path_names = [p["name"] for p in params if p["in"] == "path"]

            def url(bad: dict[str, str], path: str = path, names: list[str] = path_names) -> str:
                out = path
                for n in names:
                    out = out.replace("{" + n + "}", encode(bad.get(n, GOOD)))
                return out

            for p in params:
                if p["in"] not in ("path", "query"):
                    continue
                s = _string_schema(p.get("schema", {}))
                if s is None or "enum" in s or "format" in s:
                    continue  # a number, a boolean, an enum or a date: not an identifier
                name = p["name"]
                if s.get("pattern") != SUBJECT_SAFE_ID:
                    wrong.append(f"{method} {path}: {p['in']} {name} is not declared an id")
                for label, v in BAD.items():
                    where = f"{method} {path} {p['in']} {name}={label}"
                    if p["in"] == "path":
                        cases.append(
                            Case(where, method, url({name: v}), name, None, body, v in RESHAPE)
                        )
                    else:
                        cases.append(Case(where, method, url({}), name, {name: v}, body))
            if body_schema is None or body is None:
                continue
            for name, field_schema in body_schema.get("properties", {}).items():
                s = _string_schema(_resolve(doc, field_schema))
                if s is None or not is_id_name(name) or (method, path, name) in CLAIMS:
                    continue
                for label, v in BAD.items():
                    where = f"{method} {path} body {name}={label}"
                    cases.append(Case(where, method, url({}), name, None, {**body, name: v}))
    return cases, wrong


async def recorded_by_people(platform: Platform, after: int) -> list[str]:
    """Events by a person (not a service's own reaction) after sequence ``after``."""
    return [
        f"{r.envelope.type} by {r.envelope.actor.person}"
        async for r in platform.evlog.replay(from_seq=after + 1)
        if r.envelope.actor.role != "system"
    ]


def judge(case: Case, status: int, content_type: str, body: Any) -> str | None:
    """What is wrong with the answer to ``case``, or None."""
    if case.reshapes and status in (307, 308):
        return None  # ``/findings/`` (an empty id) is the collection's URL: redirected there
    if not 400 <= status < 500:
        return f"{case.where}: {status} {str(body)[:200]}"
    if case.reshapes:
        return None  # the router's 404 or 405: no route has a path of that shape
    if not content_type.startswith(PROBLEM):
        return f"{case.where}: {status} is not a problem body ({content_type})"
    if not isinstance(body, dict) or body.get("field") != case.field:
        got = body.get("field") if isinstance(body, dict) else body
        return f"{case.where}: {status} names {got!r}, not {case.field!r}"
    return None


async def seeded(platform: Platform) -> None:
    await seed_demo(platform.evlog, PLATFORM_T0, units=["finance"])
    await platform.settle()


SERVICES = ("intake", "review", "freshness", "accountability")


@pytest.mark.parametrize(
    "service", [pytest.param(s, marks=pytest.mark.services(s)) for s in SERVICES]
)
async def test_every_http_identifier_refuses_every_bad_value(
    platform: Platform, service: str
) -> None:
    await seeded(platform)
    svc = platform.services[service]
    app = make_app([svc], title=f"gongkai {service}")
    cases, wrong = http_cases(app.openapi())
    assert not wrong, "\n".join(wrong)
    assert cases, f"{service} has identifiers"
    before = await platform.evlog.last_sequence()
    failures = []
    for case in cases:
        resp = await platform.client.request(
            case.method,
            case.url,
            params=case.params,
            json=case.body,
            headers=DEMO.headers(CALLER),
        )
        try:
            body = resp.json()
        except ValueError:
            body = resp.text
        problem = judge(case, resp.status_code, resp.headers.get("content-type", ""), body)
        if problem:
            failures.append(problem)
    leaked = await recorded_by_people(platform, before)
    fields = sorted({c.where.rsplit("=", 1)[0].split(" ", 2)[2] for c in cases})
    print(f"\n{service}: {len(cases)} requests, {len(fields)} identifiers: {fields}")
    assert not failures, f"{len(failures)} of {len(cases)}:\n" + "\n".join(failures[:40])
    assert not leaked, f"refused requests recorded {leaked}"


def bus_cases() -> list[tuple[str, dict[str, Any], str]]:
    """(command, body, field) for every identifier of every intake bus command x bad value."""
    out = []
    missing = set(IntakeApp.COMMANDS) - set(COMMAND_BODIES)
    assert not missing, f"add a valid body to COMMAND_BODIES for {sorted(missing)}"
    for command, (model, path) in IntakeApp.COMMANDS.items():
        base = {**COMMAND_BODIES[command], **dict.fromkeys(path, GOOD)}
        names = [*path]
        for name, field_schema in model.model_json_schema().get("properties", {}).items():
            if (
                is_id_name(name)
                and _string_schema(field_schema) is not None
                and (command, name) not in CLAIMS
            ):
                names.append(name)
        for name in names:
            for v in BAD.values():
                out.append((command, {**base, name: v}, name))
    return out


@pytest.mark.services("intake")
async def test_every_bus_command_identifier_refuses_every_bad_value(platform: Platform) -> None:
    await seeded(platform)
    before = await platform.evlog.last_sequence()
    cases = bus_cases()
    failures = []
    nc = await nats.connect(platform.ctx.nats_url)
    try:
        for command, body, field in cases:
            msg = await nc.request(
                subjects.command_subject("intake", command),
                json.dumps(body).encode(),
                headers=DEMO.headers(CALLER),
                timeout=10,
            )
            status = int((msg.headers or {}).get("Gk-Status", "0"))
            problem = json.loads(msg.data)
            if status != 422 or problem.get("field") != field:
                failures.append(
                    f"{command} {field}={body[field]!r}: {status} names {problem.get('field')!r}"
                )
    finally:
        await nc.close()
    leaked = await recorded_by_people(platform, before)
    print(f"\nbus: {len(cases)} requests over {len(IntakeApp.COMMANDS)} commands")
    assert not failures, f"{len(failures)} of {len(cases)}:\n" + "\n".join(failures[:40])
    assert not leaked, f"refused commands recorded {leaked}"


# ---- named regression cases ---------------------------------------------------------------


@pytest.mark.services("review")
async def test_regression_review_policy_of_unit_with_trailing_newline_is_422_not_503(
    platform: Platform,
) -> None:
    """Found by the schemathesis fuzz test at random (issue 13): ``check_token`` matched with
    ``^…$``, which accepts a final newline, so ``d\\n`` reached NATS as a subject token and
    the answer was a 503."""
    await seeded(platform)
    resp = await platform.client.get("/units/d%0A/review-policy", headers=DEMO.headers(CALLER))
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM)
    assert resp.json()["field"] == "unit"


@pytest.mark.services("accountability")
async def test_regression_list_filter_with_bad_unit_is_422_not_an_empty_list(
    platform: Platform,
) -> None:
    await seeded(platform)
    for path in ("/violations", "/supervisions", "/findings"):
        resp = await platform.client.get(
            path, params={"unit": "finance\n"}, headers=DEMO.headers(CALLER)
        )
        assert resp.status_code == 422, (path, resp.text)
        assert resp.json()["field"] == "unit"


def test_subject_tokens_are_whole_identifiers() -> None:
    for v in BAD.values():
        assert not is_token(v), repr(v)
        with pytest.raises(InvalidIdentifier, match="post_id"):
            check_token(v, "post_id")
        with pytest.raises(InvalidIdentifier):
            subjects.token(v, "aggregate_id")
        with pytest.raises(InvalidIdentifier):
            subjects.aggregate_filter("post", v)
        with pytest.raises(InvalidIdentifier):
            subjects.event_subject("post", v, "PostSubmitted")
        with pytest.raises(InvalidIdentifier):
            subjects.command_subject("intake", v)
        with pytest.raises(InvalidIdentifier):
            subjects.type_filter(v)
        with pytest.raises(InvalidIdentifier):
            subjects.aggregate_type_filter(v)
        with pytest.raises(InvalidIdentifier):
            subjects.dlq_subject(v)
    assert subjects.event_subject("post", "P-1_a", "PostSubmitted") == (
        "gk.ev.post.P-1_a.PostSubmitted"
    )
    assert subjects.type_filter("PostSubmitted") == "gk.ev.*.*.PostSubmitted"
    assert check_token("x" * 128) == "x" * 128
