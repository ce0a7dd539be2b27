"""Bad messages published straight on gk.ev.*, past every service's validation, meet every
service's live consumers: each is dead-lettered, none blocks, and good events that follow are
applied by every service.

test_projection_consumers.py checks the consumer machinery with a test projection; the fault
test (tests/e2e/test_faults.py) sends two poisons under load to service processes. Here the
whole catalogue of bad input goes to the four services in-process: bytes that are not JSON,
fields of the wrong type, unknown types and versions, a subject and a body that disagree, an
old version missing the field its upcaster renames, JSON nested deeper than the parser goes, a
time outside datetime's range in UTC, a message near the size limit and one over it.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import nats.js.errors
import pytest

from gongkai import subjects
from gongkai.events import Actor, canonical_json, digest, new_event
from gongkai.events.contracts.intake import (
    PersonRegistered,
    RoleGranted,
    TokenIssued,
)
from gongkai.tokens import new_token, token_hash
from gongkai_demo.county import DEMO, seed_demo
from tests.builders import post_submitted
from tests.conftest import PLATFORM_T0, Platform
from tests.waiting import wait_until

MAKER = Actor(person="finance-maker", role="maker", unit="finance")
#: The demo county office's supervisor, who holds the office role and so may grant it.
OFFICE = Actor(person="office-supervisor", role="office", unit="county-office")
TITLE, BODY = "关于印发《财政专项资金管理办法》的通知", "正文"
CONTENT = digest({"title": TITLE, "body": BODY, "attachments": []})


def submitted(post: str) -> Any:
    return new_event(
        post_submitted(
            title=TITLE,
            body=BODY,
            information_date=date(2026, 2, 27),
            content_digest=CONTENT,
        ),
        aggregate_id=post,
        actor=MAKER,
        command_id=f"bus-bad-input-{post}",
        recorded_at=PLATFORM_T0,
    )


def poisons() -> list[tuple[str, str, bytes]]:
    """(what, subject, body): none of them is an event any reader can apply."""
    good = json.loads(submitted("X0").to_json())

    def variant(**over: Any) -> bytes:
        raw = json.loads(json.dumps(good))
        payload = over.pop("payload", {})
        raw.update(over)
        raw["payload"].update(payload)
        return canonical_json(raw)

    v1 = json.loads(json.dumps(good))
    v1["schema_version"] = 1
    del v1["payload"]["content_digest"]  # v1 called it sha256; here it is missing altogether
    post = "gk.ev.post.{}.PostSubmitted".format
    return [
        ("not JSON", post("X1"), b"\xff not json {"),
        ("not an object", post("X2"), b"[1, 2, 3]"),
        ("wrongly typed field", post("X3"), variant(payload={"title": 5})),
        ("missing field", post("X4"), variant(aggregate_id=None)),
        ("unknown type", "gk.ev.post.X5.PostExploded", variant(type="PostExploded")),
        ("subject and body disagree", post("X6"), variant(type="PostWithdrawn")),
        ("newer version", post("X7"), variant(schema_version=99)),
        ("old version missing its digest", post("X8"), canonical_json(v1)),
        ("nested too deep", post("X9"), b"[" * 50_000 + b"]" * 50_000),
        (
            "time out of range in UTC",
            post("X10"),
            variant(business_time="0001-01-01T00:00:00+08:00"),
        ),
        # Within the stream's 1 MiB limit: stored, then refused by every reader.
        ("near the size limit", post("X11"), variant(payload={"junk": "x" * 1_000_000})),
        ("not JSON, column subject", "gk.ev.column.finance--x.ColumnHidden", b"{{{"),
        # The directory projections read only people's and units' events (their filter).
        ("not JSON, person subject", "gk.ev.person.X12.RoleGranted", b"\x00{"),
        # review's void-on-revision reads only revisions and withdrawals (its filter).
        ("not JSON, revision subject", "gk.ev.post.X13.PostRevised", b"\x01{"),
    ]


async def dead_letters(platform: Platform) -> list[dict[str, str]]:
    info = await platform.evlog.js.stream_info(subjects.DLQ_STREAM)
    out = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        if info.state.messages == 0:
            break
        msg = await platform.evlog.js.get_msg(subjects.DLQ_STREAM, seq)
        out.append(dict(msg.headers or {}))
    return out


@pytest.mark.timeout(120)
async def test_bad_messages_are_dead_lettered_and_every_service_goes_on(
    platform: Platform,
) -> None:
    await seed_demo(platform.evlog, PLATFORM_T0, units=["finance"])
    await platform.evlog.append([submitted("P-before")])
    await platform.settle()
    client = platform.client
    leader = DEMO.headers("finance-leader")
    signed = await client.post(
        "/posts/P-before/signatures",
        json={"stage": "leader", "decision": "agree", "content_digest": CONTENT},
        headers=leader,
    )
    assert signed.status_code == 201, signed.text
    await platform.settle()

    # ---- the poison ----------------------------------------------------------------------
    js = platform.evlog.js
    first = await platform.evlog.last_sequence() + 1
    seqs: dict[int, str] = {}
    for what, subject, body in poisons():
        ack = await js.publish(subject, body, stream=subjects.STREAM)
        seqs[ack.seq] = what
    with pytest.raises(nats.js.errors.APIError, match="maximum"):
        # Over the stream's limit: refused by the server, so never reaches a consumer.
        await js.publish("gk.ev.post.X99.PostSubmitted", b"x" * (1024 * 1024 + 1),
                         stream=subjects.STREAM)
    # Not stored (the log itself goes on growing: accountability alerts on the poison).
    with pytest.raises(nats.js.errors.NotFoundError):
        await js.get_last_msg(subjects.STREAM, "gk.ev.post.X99.>")

    # ---- good events after it ------------------------------------------------------------
    token = new_token()
    events = [
        new_event(
            payload,
            aggregate_id="late-reader",
            actor=OFFICE,
            command_id="bus-bad-input-late-reader",
            index=i,
            recorded_at=PLATFORM_T0,
        )
        for i, payload in enumerate(
            [
                PersonRegistered(person_id="late-reader", name="读网员（演示）"),
                RoleGranted(person_id="late-reader", unit="county-office", role="office"),
                TokenIssued(
                    person_id="late-reader", token_sha256=token_hash(token), token_hint="late"
                ),
            ]
        )
    ]
    await platform.evlog.append(events)
    revised = await client.post(
        "/posts/P-before/revisions",
        json={"title": TITLE, "body": "改过的正文", "information_date": "2026-02-27"},
        headers=DEMO.headers("finance-maker"),
    )
    assert revised.status_code == 201, revised.text
    await platform.settle(within=30)

    # Every service applied what came after the poison.
    late = {"Authorization": f"Bearer {token}"}
    me = await client.get("/me", headers=late)  # intake's directory
    assert me.status_code == 200 and me.json()["person_id"] == "late-reader", me.text
    queue = await client.get("/people/late-reader/queue", headers=late)  # review's directory
    assert queue.status_code == 200, queue.text
    kept = await client.put(  # freshness's directory
        "/units/finance/columns/leaders_activities/visibility",
        json={"visibility": "kept", "reason": "我们发布这一栏"},
        headers=late,
    )
    assert kept.status_code == 200, kept.text
    trail = await client.get("/posts/P-before/trail", headers=late)  # accountability
    assert trail.status_code == 200, trail.text
    assert "revised" in [s["what"] for s in trail.json()["trail"]], trail.json()

    async def voided() -> bool:  # review's durable reaction to the revision
        review = (await client.get("/posts/P-before/review", headers=leader)).json()
        return any(c.get("outcome") == "voided" for c in review.get("chains", []))

    await wait_until(voided, 10, "review voids the approval the revision overtook")

    # ---- what the dead-letter stream says --------------------------------------------------
    dead = await dead_letters(platform)
    assert all(d.get("Gk-Dlq-Error") for d in dead), "each dead letter says what was wrong"
    by_seq: dict[int, set[str]] = {}
    for d in dead:
        reader = f"{d.get('Gk-Dlq-Service')}/{d['Gk-Dlq-Consumer']}"
        by_seq.setdefault(int(d["Gk-Dlq-Stream-Seq"]), set()).add(reader)
    assert set(by_seq) == set(seqs), (
        "every poison dead-lettered, no good event: "
        f"{ {seqs.get(s, s): c for s, c in by_seq.items()} }"
    )
    assert min(by_seq) >= first
    readers = set().union(*by_seq.values())
    # Each service's own consumers, the four directory projections each under its service.
    expected = {
        "intake/directory",
        "intake/intake_column_choices",
        "review/directory",
        "review/review_queue",
        "review/review-void-on-revision",
        "freshness/directory",
        "freshness/freshness",
        "accountability/directory",
        "accountability/accountability",
    }
    assert expected <= readers, f"missing: {sorted(expected - readers)}"
    # Each poison is dead-lettered by every consumer whose filter reads its subject: the
    # submission's by all but the directories (people and units only), intake's column
    # choices and review's void-on-revision (revisions and withdrawals only).
    garbage = next(s for s, what in seqs.items() if what == "not JSON")
    post_readers = {r for r in expected if "column" not in r and not r.endswith("/directory")}
    assert post_readers - {"review/review-void-on-revision"} <= by_seq[garbage]
    assert "review/review-void-on-revision" not in by_seq[garbage]
    revision = next(s for s, what in seqs.items() if what == "not JSON, revision subject")
    assert post_readers <= by_seq[revision]
    person = next(s for s, what in seqs.items() if what == "not JSON, person subject")
    assert {r for r in expected if r.endswith("/directory")} | {
        "review/review_queue",  # reads role grants
        "accountability/accountability",  # reads every event
    } <= by_seq[person]
    print(
        f"\n{len(seqs)} poison messages, {len(dead)} dead letters by "
        f"{len(readers)} consumers: {sorted(readers)}"
    )
