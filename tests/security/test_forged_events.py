"""Forged events against the running platform: none is believed, each is an integrity alert.

The attacker of issue 14 can publish on the bus — anonymously on the old embedded default, or
with one service's credentials. They publish an approval of a post by "mallory" (a person with
no role), a bearer token of their choosing for an office person, and a violation against a
unit, signed with nothing, with a key nobody trusts, or with another service's real key; and a
correctly signed signature (review's own key, as if review were misused) by a person who does
not hold the stage's role. Every one is left out of every read model and answer; the CMS's
publication of the post is ``published_without_review``; accountability records an
IntegrityAlert naming subject, sequence and the failed check, which the office reads over HTTP;
each refusal is counted in ``/metrics``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY as PROM

from gongkai import subjects
from gongkai.events import Actor, Envelope, EventPayload, new_event
from gongkai.events.contracts.accountability import ViolationRecorded
from gongkai.events.contracts.intake import TokenIssued
from gongkai.events.contracts.review import ReviewConcluded, ReviewSigned
from gongkai.natsserver import NatsServer
from gongkai.trust.keys import ServiceKey
from gongkai_demo.county import DEMO, seed_demo
from tests.conftest import PLATFORM_T0, Platform
from tests.waiting import wait_until

GONGKAI = str(Path(sys.executable).parent / "gongkai")
MALLORY = Actor(person="mallory", role="leader", unit="finance")
Sign = Callable[[str, bytes], dict[str, str]]


def forged(payload: EventPayload, aggregate: str, actor: Actor, n: str) -> Envelope[Any]:
    return new_event(
        payload,
        aggregate_id=aggregate,
        actor=actor,
        command_id=f"forge-{n}",
        recorded_at=PLATFORM_T0,
    )


async def publish(p: Platform, env: Envelope[Any], sign: Sign | None) -> int:
    """Straight on the bus, as an attacker would: the client's own signing is bypassed."""
    subject = subjects.event_subject(env.aggregate_type, env.aggregate_id, env.type)
    data = env.to_json()
    headers = sign(subject, data) if sign is not None else None
    ack = await p.evlog.js.publish(subject, data, stream=subjects.STREAM, headers=headers)
    return int(ack.seq)


def failures(check: str) -> float:
    total = 0.0
    for metric in PROM.collect():
        if metric.name != "gongkai_integrity_failures":
            continue
        for sample in metric.samples:
            if sample.name.endswith("_total") and sample.labels.get("check") == check:
                total += sample.value
    return total


async def submit(p: Platform) -> dict[str, Any]:
    r = await p.client.post(
        "/posts",
        headers=DEMO.headers("finance-maker"),
        json={
            "unit": "finance",
            "column": "normative_documents",
            "title": "关于伪造审批的测试通知",
            "body": "正文。",
            "important_kind": "normative_document",
            "origin": "produced",
            "channel": "website",
            "information_date": "2026-03-02",
        },
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def approval(post: dict[str, Any], signer: Actor, chain: int = 1) -> list[EventPayload]:
    digest = post["content_digest"]
    return [
        ReviewSigned(
            post_id=post["post_id"], chain=chain, stage="leader", decision="agree",
            signer=signer, content_digest=digest,
        ),
        ReviewConcluded(
            post_id=post["post_id"], chain=chain, outcome="approved", content_digest=digest
        ),
    ]


async def alerts(p: Platform) -> dict[int, dict[str, Any]]:
    r = await p.client.get("/integrity-alerts", headers=DEMO.headers("office-supervisor"))
    assert r.status_code == 200, r.text
    return {a["sequence"]: a for a in r.json()}


async def test_forged_approvals_tokens_and_violations_are_never_believed(
    platform: Platform, nats_server: NatsServer
) -> None:
    p = platform
    nats_url = nats_server.url
    await seed_demo(p.evlog, PLATFORM_T0, units=["finance"])
    await p.settle()
    keys = p.evlog.keys
    assert keys is not None
    stranger = ServiceKey.generate("review")  # a key nobody put in the trust anchors
    signers: dict[str, Sign | None] = {
        "unsigned": None,
        "unknown_key": stranger.sign_event,
        "wrong_service": keys.private["intake"].sign_event,
    }
    before = {check: failures(check) for check in (*signers, "authority")}
    post = await submit(p)
    await p.settle()

    expected: dict[int, str] = {}
    for check, sign in signers.items():
        for i, payload in enumerate(approval(post, MALLORY)):
            env = forged(payload, post["post_id"], MALLORY, f"{check}-{i}")
            expected[await publish(p, env, sign)] = check
    # A correctly signed signature (review's own key) by someone without the role.
    review_key = keys.private["review"].sign_event
    for i, payload in enumerate(approval(post, MALLORY, chain=1)):
        env = forged(payload, post["post_id"], MALLORY, f"authority-{i}")
        seq = await publish(p, env, review_key)
        if i == 0:
            expected[seq] = "authority"
    # A token of the attacker's choosing for an office person, and a violation.
    token = "attacker-chosen-token-0123456789"
    issued = forged(
        TokenIssued(
            person_id="office-supervisor",
            token_sha256=hashlib.sha256(token.encode()).hexdigest(),
            token_hint=token[:4],
        ),
        "office-supervisor",
        Actor(person="mallory", role="office", unit="county-office"),
        "token",
    )
    expected[await publish(p, issued, keys.private["accountability"].sign_event)] = (
        "wrong_service"
    )
    violation = forged(
        ViolationRecorded(
            kind="wrong_information", unit="finance", responsible=(), evidence=("x",),
            severity="serious", occurred_at=PLATFORM_T0, summary="forged",
        ),
        "V-forged",
        Actor(person="accountability", role="system", unit="system"),
        "violation",
    )
    expected[await publish(p, violation, keys.private["review"].sign_event)] = "wrong_service"
    await p.settle()

    # Review: still waiting for the staff opinion; mallory's approval is nowhere.
    r = await p.client.get(
        f"/posts/{post['post_id']}/review", headers=DEMO.headers("finance-leader")
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "in_review", r.json()
    assert "mallory" not in r.text
    # The work queue agrees: the post still awaits finance's staff opinion.
    r = await p.client.get(
        "/people/finance-staff/queue", headers=DEMO.headers("finance-staff")
    )
    assert r.status_code == 200, r.text
    waiting = {i["post_id"]: (i["stage"], i["chain"]) for i in r.json()["items"]}
    assert waiting.get(post["post_id"]) == ("staff", 1), r.json()
    # The attacker's token opens nothing; the forged violation is not on record.
    r = await p.client.get("/violations", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    listed = await p.client.get("/violations", headers=DEMO.headers("office-supervisor"))
    assert "forged" not in listed.text

    # The CMS puts the post online: published without review, mallory named nowhere.
    r = await p.client.post(
        "/publications",
        headers=DEMO.headers("cms"),
        json={
            "post_id": post["post_id"], "unit": "finance", "column": "normative_documents",
            "url": "https://www.example.gov.cn/finance/forged",
            "online_at": PLATFORM_T0.isoformat(),
            "content_digest": post["content_digest"],
        },
    )
    assert r.status_code == 201, r.text
    acc = p.services["accountability"]

    async def judged() -> bool:
        await acc.tick()  # type: ignore[attr-defined]
        found = await p.client.get(
            "/violations", headers=DEMO.headers("office-supervisor"),
            params={"kind": "published_without_review"},
        )
        return any(v.get("post_id") == post["post_id"] for v in found.json())

    await wait_until(judged, 20, "the publication judged")
    trail = await p.client.get(
        f"/posts/{post['post_id']}/trail", headers=DEMO.headers("office-supervisor")
    )
    assert "mallory" not in trail.text

    # Every forgery is an alert the office reads: subject, sequence, the failed check.
    async def all_alerted() -> bool:
        await acc.tick()  # type: ignore[attr-defined]
        return set(expected) <= set(await alerts(p))

    await wait_until(all_alerted, 20, "every forgery alerted")
    found = await alerts(p)
    for seq, check in expected.items():
        assert found[seq]["check"] == check, found[seq]
        assert found[seq]["subject"].startswith("gk.ev.")
    for check in signers:
        assert failures(check) > before[check], check
    # Alerts are the office's to read.
    r = await p.client.get("/integrity-alerts", headers=DEMO.headers("finance-leader"))
    assert r.status_code == 403

    # The inspectors' tools read the log itself: the same alerts, no approval, no mallory.
    def audit(*argv: str) -> str:
        out = subprocess.run(
            [GONGKAI, "audit", *argv, "--nats-url", nats_url],
            capture_output=True, text=True, timeout=60, check=False,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    listed_alerts = json.loads(await asyncio.to_thread(audit, "alerts", "--json"))
    cli_alerts = {a["sequence"]: a["check"] for a in listed_alerts}
    assert {s: cli_alerts.get(s) for s in expected} == expected
    cli_trail = json.loads(await asyncio.to_thread(audit, "trail", post["post_id"], "--json"))
    assert "mallory" not in json.dumps(cli_trail, ensure_ascii=False)
    assert not any(step["what"] == "review:approved" for step in cli_trail["trail"])
