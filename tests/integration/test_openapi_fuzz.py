"""schemathesis against each service's own OpenAPI document: no input gets a 5xx.

Each service runs alone on the test's nats-server (its directory seeded with the demo county,
a few facts for it to work on), exactly as ``gongkai service NAME`` serves it. schemathesis
generates cases from the service's OpenAPI document, valid ones and invalid ones, with path
parameters either invented or set to ids that exist; every case is sent in-process (ASGI, same
event loop as the service) as four different callers in turn, drawn from: nobody, a malformed or
unknown token, and several demo people of different units and roles, so that most requests get
past authentication into the domain. For every response:

* no 5xx (schemathesis's ``not_a_server_error`` check, and the status itself);
* a refused request (4xx) recorded nothing: no event by a person appeared on the log while it
  was handled (events the services record by themselves carry the system actor).

Each service gets ``QUOTA`` requests, so the four make at least 10,000; the test prints its
counts, statuses and time (docs/reliability.md). ``GONGKAI_FUZZ_QUOTA=N`` sets another number
of requests per service, for a longer soak.

Under ``make test`` the cases are the same on every run (hypothesis profile "ci", derandomized:
tests/determinism.py), so this test passes or fails the same way every time. ``make fuzz``
draws fresh cases from a seed it prints, four times as many; ``make fuzz SEED=N`` draws the
same ones again. What a fuzz run finds becomes a named regression test: the first, an id with
a final newline that reached NATS and answered 503, is
tests/integration/test_identifiers.py::test_regression_review_policy_of_unit_with_trailing_newline_is_422_not_503.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from gongkai.events import Actor, digest, new_event
from gongkai.events.contracts.freshness import ColumnStale
from gongkai.events.contracts.intake import PostPublished
from gongkai.runtime.host import make_app
from gongkai.runtime.service import Service
from gongkai_demo.county import demo_token, seed_demo
from tests.builders import post_submitted
from tests.conftest import PLATFORM_T0, Platform
from tests.determinism import FUZZ

#: Requests per service: a little over a quarter of 10,000, since a few may not be sendable;
#: four times as many under ``make fuzz``.
QUOTA = int(os.environ.get("GONGKAI_FUZZ_QUOTA", "10400" if FUZZ else "2600"))
FLOOR = min(QUOTA, 2500)  # 4 services x 2,500 = the 10,000 of issue 8
FINANCE = "finance"
MAKER = Actor(person="finance-maker", role="maker", unit=FINANCE)
CMS = Actor(person="cms", role="office", unit="county-office")
SYSTEM = Actor(person="freshness", role="system", unit="system")

#: Who sends a request: nobody, broken or unknown credentials, and demo people (most of the
#: traffic, so that requests reach the domain rather than stop at 401).
PERSONAS: tuple[str | None, ...] = (
    None,
    "Bearer gk_not_a_token",
    "Basic Zm9vOmJhcg==",
    "finance-maker",
    "finance-staff",
    "finance-secrecy",
    "finance-leader",
    "education-maker",
    "education-leader",
    "office-reader",
    "office-supervisor",
    "cms",
)


#: Generating a case costs more than sending it: each goes out as this many callers in turn.
CALLERS_PER_CASE = 4


def authorization(persona: str | None) -> dict[str, str]:
    if persona is None:
        return {}
    if " " in persona:
        return {"Authorization": persona}
    return {"Authorization": f"Bearer {demo_token(persona)}"}


@dataclass
class Known:
    """Ids that exist, by path parameter name: half the cases aim at real resources."""

    ids: dict[str, list[str]] = field(default_factory=dict)

    def fixed(self, names: Sequence[str]) -> list[dict[str, str]]:
        if not names or any(n not in self.ids for n in names):
            return []
        return [dict(zip(names, combo, strict=True)) for combo in
                itertools.product(*(self.ids[n] for n in names))][:6]


async def seed(platform: Platform, service: str) -> Known:
    """The demo county, and for each service a few facts of the kind it works on."""
    evlog = platform.evlog
    await seed_demo(evlog, PLATFORM_T0, units=["finance", "education"])
    known = Known(
        {
            "unit": [FINANCE, "education", "county-office"],
            "code": [FINANCE, "education"],
            "person_id": ["finance-leader", "finance-maker", "office-reader"],
            "column": ["normative_documents", "leaders_activities", "housing_security"],
        }
    )
    posts = ["P-fuzz-1", "P-fuzz-2"]
    events = []
    for i, post in enumerate(posts):
        title, body = f"关于印发第{i}号办法的通知", "正文"
        events.append(
            new_event(
                post_submitted(
                    unit=FINANCE,
                    title=title,
                    body=body,
                    important_kind="normative_document" if i else None,
                    information_date=date(2026, 2, 27),
                    content_digest=digest({"title": title, "body": body, "attachments": []}),
                ),
                aggregate_id=post,
                actor=MAKER,
                command_id=f"fuzz-seed-{post}",
                recorded_at=PLATFORM_T0,
            )
        )
    events.append(
        new_event(
            PostPublished(
                publication_id="pub-fuzz-1",
                post_id=None,
                unit=FINANCE,
                column="normative_documents",
                url="https://www.example.gov.cn/pub-fuzz-1.html",
                online_at=PLATFORM_T0,
                content_digest="c" * 64,
            ),
            aggregate_id="pub-fuzz-1",
            actor=CMS,
            command_id="fuzz-seed-pub",
            recorded_at=PLATFORM_T0,
        )
    )
    events.append(
        new_event(
            ColumnStale(
                unit=FINANCE,
                column="leaders_activities",
                rule_set="wenan-2018",
                rule="fortnightly",
                rule_kind="periodic",
                due_date=date(2026, 2, 20),
                overdue_days=6,
                episode="fuzz",
            ),
            aggregate_id=f"{FINANCE}--leaders_activities",
            actor=SYSTEM,
            command_id="fuzz-seed-stale",
            recorded_at=PLATFORM_T0,
        )
    )
    for e in events:
        await evlog.append([e])
    await platform.settle()
    known.ids["post_id"] = posts
    known.ids["publication_id"] = ["pub-fuzz-1"]
    if service == "accountability":
        svc: Any = platform.services[service]
        await svc.settle()  # the unreviewed publication becomes a violation, the column a case
        await platform.settle()  # and what it recorded is read back
        office = authorization("office-supervisor")
        violations = (await platform.client.get("/violations", headers=office)).json()
        cases = (await platform.client.get("/supervisions", headers=office)).json()
        known.ids["violation_id"] = [v["violation_id"] for v in _items(violations)][:2]
        known.ids["case_id"] = [c["case_id"] for c in _items(cases)][:2]
        known.ids["finding_id"] = ["F-none"]
    return known


def _items(body: Any) -> list[dict[str, Any]]:
    if isinstance(body, dict):
        for key in ("items", "violations", "cases", "supervisions"):
            if isinstance(body.get(key), list):
                return body[key]
        return []
    return body if isinstance(body, list) else []


def generate(strategy: st.SearchStrategy[Any], n: int) -> list[Any]:
    """Up to ``n`` distinct cases (fewer when the operation has fewer to offer)."""
    out: list[Any] = []
    if n <= 0:
        return out

    @settings(
        max_examples=n,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(case: Any) -> None:
        out.append(case)

    # Unsatisfiable: every draw was filtered out, the operation has no such cases.
    with contextlib.suppress(Unsatisfiable):
        collect()
    return out


def request_kwargs(case: Any) -> dict[str, Any]:
    """schemathesis's transport arguments, as httpx.AsyncClient.request takes them."""
    kw = case.as_transport_kwargs(base_url="http://gongkai")
    out: dict[str, Any] = {
        "method": kw["method"],
        "url": kw["url"],
        # Not schemathesis's random test-case id: the same case sends the same request.
        "headers": {
            str(k): str(v)
            for k, v in (kw.get("headers") or {}).items()
            if k != "X-Schemathesis-TestCaseId"
        },
        "params": kw.get("params"),
    }
    if "json" in kw:
        # ensure_ascii: a lone surrogate the generator may produce travels as \\ud800, as a
        # client would send it, instead of failing to encode here.
        out["content"] = json.dumps(kw["json"]).encode()
        out["headers"].setdefault("Content-Type", "application/json")
    elif kw.get("data") is not None:
        data = kw["data"]
        out["content"] = data if isinstance(data, bytes) else str(data).encode()
    return out


@dataclass
class Tally:
    sent: int = 0
    cases: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    skipped: int = 0
    generating_s: float = 0.0


async def recorded_by_people(platform: Platform, after: int, upto: int) -> list[str]:
    """Events by a person (not a service's own reaction) in ``(after, upto]``."""
    return [
        f"{r.envelope.type} by {r.envelope.actor.person}"
        async for r in platform.evlog.replay(from_seq=after + 1)
        if r.seq <= upto and r.envelope.actor.role != "system"
    ]


def cases_for(op: Any, known: Known, n: int) -> list[Any]:
    """About ``n`` cases: half aimed at resources that exist (when the path names one), the rest
    invented; of those, one in four invalid where the input allows."""
    combos = known.fixed([p.name for p in op.path_parameters])
    aimed = [
        case
        for fixed in combos
        for case in generate(
            op.as_strategy(GenerationMode.POSITIVE, path_parameters=fixed), n // 2 // len(combos)
        )
    ]
    rest = n - len(aimed) if aimed else n
    # Only a body or a query can be invalid; a string path parameter or header cannot (asking
    # anyway burns a second per operation on draws that are all filtered out).
    negative = rest // 4 if op.body or len(op.query) else 0
    invented = generate(op.as_strategy(GenerationMode.POSITIVE), rest - negative)
    invented += generate(op.as_strategy(GenerationMode.NEGATIVE), negative)
    if not aimed:
        return invented
    # Alternate, so that an operation with few distinct aimed cases (a GET whose only input is
    # the id) still sends half its requests at real resources.
    return [c for pair in zip(invented, itertools.cycle(aimed), strict=False) for c in pair]


async def fuzz(platform: Platform, svc: Service, known: Known, quota: int) -> Tally:
    app = make_app([svc], title=f"gongkai {svc.name}")
    schema = schemathesis.openapi.from_dict(app.openapi())
    transport = httpx.ASGITransport(app=app)
    client = httpx.AsyncClient(transport=transport, base_url="http://gongkai")
    ops = [
        r.ok()
        for r in schema.get_all_operations()
        if "health" not in (r.ok().definition.raw.get("tags") or [])
    ]
    per_op = -(-quota // len(ops))  # ceiling: the quota is a floor
    tally = Tally()
    last = await platform.evlog.last_sequence()
    try:
        for op in ops:
            t0 = time.perf_counter()
            # Generating costs more than sending (up to 40 ms a case for POST /posts), so each
            # case goes out as CALLERS_PER_CASE different callers: the same input meets 401,
            # 403 and the domain's own answers.
            cases = cases_for(op, known, -(-per_op // CALLERS_PER_CASE))
            tally.generating_s += time.perf_counter() - t0
            tally.cases += len(cases)
            built: dict[int, dict[str, Any]] = {}  # a case's request, built once for its callers
            for i in range(per_op):
                case = cases[i % len(cases)]
                # Each round over the cases shifts the callers by 5 (coprime with 12), so a case
                # meets a different caller every time it is sent.
                caller = PERSONAS[(i + 5 * (i // len(cases))) % len(PERSONAS)]
                if i % len(cases) not in built:
                    built[i % len(cases)] = request_kwargs(case)
                kw = dict(built[i % len(cases)])
                kw["headers"] = {**kw["headers"], **authorization(caller)}
                if i % 4 and not any(k.lower() == "idempotency-key" for k in kw["headers"]):
                    # The key is optional in the document but required by every write: most
                    # requests carry one, so that they reach the domain instead of a 400.
                    kw["headers"]["Idempotency-Key"] = f"fuzz-{svc.name}-{i}"
                try:
                    # The client builds the request (its default headers, the URL, the query)
                    # and the transport takes it to the app. The client's own send would add
                    # cookies, auth, redirects and hooks, none of which these routes use (the
                    # console, which sets a cookie, is not in the documents): skipping it is
                    # cheaper per request and sends the same bytes.
                    request = client.build_request(**kw)
                    resp = await transport.handle_async_request(request)
                    resp.request = request
                except (httpx.LocalProtocolError, UnicodeEncodeError, ValueError):
                    tally.skipped += 1  # not sendable by any HTTP client (a bad header value)
                    continue
                tally.sent += 1
                tally.by_status[resp.status_code] = tally.by_status.get(resp.status_code, 0) + 1
                where = f"{kw['method']} {resp.request.url} -> {resp.status_code}"
                if resp.status_code >= 500:
                    await resp.aread()
                    # schemathesis's own check says it in its words (and with a reproduction).
                    try:
                        case.validate_response(resp, checks=[not_a_server_error])
                    except Exception as exc:
                        where += f": {str(exc)[:500]}"
                    tally.failures.append(where)
                # Requests go one at a time, so a person's event that appeared while a refused
                # request was handled came from it.
                now = await platform.evlog.last_sequence()
                if 400 <= resp.status_code < 500 and now > last:
                    leaked = await recorded_by_people(platform, last, now)
                    if leaked:
                        tally.failures.append(f"{where} but recorded {leaked}")
                last = now
    finally:
        await client.aclose()
    return tally


@pytest.mark.fuzz
@pytest.mark.parametrize(
    "service",
    [pytest.param(s, marks=pytest.mark.services(s)) for s in
     ("intake", "review", "freshness", "accountability")],
)
async def test_generated_requests_never_get_a_server_error(
    platform: Platform, service: str
) -> None:
    known = await seed(platform, service)
    t0 = time.perf_counter()
    tally = await fuzz(platform, platform.services[service], known, QUOTA)
    took = time.perf_counter() - t0
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(tally.by_status.items()))
    print(
        f"\nschemathesis {service}: {tally.sent} requests ({tally.cases} generated cases) in "
        f"{took:.1f} s "
        f"({tally.generating_s:.1f} s generating; {tally.skipped} unsendable skipped) — {statuses}"
    )
    assert not tally.failures, "\n".join(tally.failures[:20])
    assert tally.sent >= FLOOR, "four services x 2,500: at least 10,000 requests in all"
    assert sum(v for k, v in tally.by_status.items() if k < 300) > 0, "some got through"
