"""The county office rectifies a violation by hand: ``POST /violations/{id}/rectification``.

accountability alone on a real nats-server (the ``rig`` of test_accountability_service);
upstream facts are appended as intake and freshness record them.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from gongkai.events.contracts.freshness import ColumnRefreshed, ColumnStale
from gongkai.events.contracts.intake import PublicationRemoved
from gongkai_demo.county import DEMO
from tests.integration.test_accountability_service import (
    CMS,
    Rig,
    at,
    rig,
    submit_and_publish,
)

__all__ = ["rig"]  # the fixture, imported for pytest

D = date.fromisoformat
PATH = "/violations/{}/rectification"


async def unreviewed(rig: Rig) -> str:
    """A normative document online without the leader's approval: one violation."""
    await submit_and_publish(rig, "P1", "pub1")
    await rig.svc.settle()
    [v] = await rig.events("ViolationRecorded")
    return str(v.aggregate_id)


async def rectifications(rig: Rig) -> list[Any]:
    return [e.payload for e in await rig.events("ViolationRectified")]


async def test_office_rectifies_once_with_reason_and_idempotency_key(rig: Rig) -> None:
    vid = await unreviewed(rig)
    office = DEMO.headers("office-supervisor", key="rectify-1")
    body = {"reason": "县政府办已补签审查表并存档", "evidence": ["审查表 2026-03-02 第7号"]}
    r = await rig.client.post(PATH.format(vid), headers=office, json=body)
    assert r.status_code == 201, r.text
    answer = r.json()
    assert answer["how"] == "by_office"
    assert answer["note"] == body["reason"]
    assert answer["by"] == {
        "person": "office-supervisor",
        "role": "office",
        "unit": "county-office",
    }
    [p] = await rectifications(rig)
    assert (p.violation_id, p.how, p.note, p.evidence) == (
        vid,
        "by_office",
        body["reason"],
        ("审查表 2026-03-02 第7号",),
    )

    # The same request again (a retry, same key or none): the same answer, nothing recorded.
    for headers in (office, {"Authorization": office["Authorization"]}):
        again = await rig.client.post(PATH.format(vid), headers=headers, json=body)
        assert again.status_code == 201
        assert again.json() == answer
    # Another request on a rectified violation: 409, naming who rectified it and why.
    late = await rig.client.post(
        PATH.format(vid), headers=DEMO.headers("office-reader"), json={"reason": "再次整改"}
    )
    assert late.status_code == 409
    assert late.headers["content-type"].startswith("application/problem+json")
    assert late.json()["rectified"]["note"] == body["reason"]
    other = await rig.client.post(PATH.format(vid), headers=office, json={"reason": "别的理由"})
    assert other.status_code == 409
    assert len(await rectifications(rig)) == 1

    await rig.svc.settle()
    v = (await rig.client.get(f"/violations/{vid}", headers=office)).json()
    assert v["rectified"]["how"] == "by_office"
    assert v["rectified"]["note"] == body["reason"]
    assert v["rectified"]["by"]["person"] == "office-supervisor"
    listed = await rig.client.get("/violations", params={"rectified": "true"}, headers=office)
    assert [x["violation_id"] for x in listed.json()] == [vid]

    # Removing the item later rectifies nothing more: one rectification per violation.
    await rig.fact(
        PublicationRemoved(
            publication_id="pub1",
            post_id="P1",
            unit="finance",
            column="normative_documents",
            removed_at=rig.clock.now(),
            reason="撤下",
        ),
        "pub1",
        CMS,
    )
    await rig.svc.settle()
    assert len(await rectifications(rig)) == 1


async def test_refusals_record_nothing(rig: Rig) -> None:
    vid = await unreviewed(rig)
    office = DEMO.headers("office-reader")
    cases: list[tuple[dict[str, str], str, object, int, str | None]] = [
        # (headers, violation id, body, status, field)
        ({"Authorization": "Bearer nope"}, vid, {"reason": "x"}, 401, None),
        (DEMO.headers("finance-leader"), vid, {"reason": "已整改"}, 403, None),
        (DEMO.headers("finance-maker"), vid, {"reason": "已整改"}, 403, None),
        (office, "V-0000000000000000000a", {"reason": "已整改"}, 404, None),
        (office, "not.a.token", {"reason": "已整改"}, 422, "violation_id"),
        (office, vid, {}, 422, "reason"),
        (office, vid, {"reason": "   "}, 422, "reason"),
        (office, vid, {"reason": "x" * 2001}, 422, "reason"),
        (office, vid, {"reason": "ok", "how": "removed"}, 422, "how"),
        (office, vid, {"reason": "ok", "evidence": [""]}, 422, "evidence"),
        (office, vid, {"reason": "ok", "evidence": "one"}, 422, "evidence"),
        (office, vid, ["reason"], 422, None),
        ({**office, "Idempotency-Key": "x" * 201}, vid, {"reason": "ok"}, 400, "Idempotency-Key"),
    ]
    for headers, target, body, status, field in cases:
        r = await rig.client.post(PATH.format(target), headers=headers, json=body)
        assert r.status_code == status, (target, body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        if field is not None:
            assert r.json()["field"] == field, r.json()
    assert await rectifications(rig) == []


async def test_automatic_rectification_first_then_office_gets_409(rig: Rig) -> None:
    vid = await unreviewed(rig)
    await rig.fact(
        PublicationRemoved(
            publication_id="pub1",
            post_id="P1",
            unit="finance",
            column="normative_documents",
            removed_at=rig.clock.now(),
            reason="撤下未经审查的文件",
        ),
        "pub1",
        CMS,
    )
    await rig.svc.settle()
    r = await rig.client.post(
        PATH.format(vid), headers=DEMO.headers("office-reader"), json={"reason": "已整改"}
    )
    assert r.status_code == 409
    assert r.json()["rectified"]["how"] == "removed"
    assert [p.how for p in await rectifications(rig)] == ["removed"]


async def test_stale_after_supervision_rectified_by_hand_then_refreshed(rig: Rig) -> None:
    stale = await rig.fact(
        ColumnStale(
            unit="finance",
            column="leaders_activities",
            rule_set="wenan-2018",
            rule="fortnightly",
            rule_kind="periodic",
            due_date=D("2026-03-01"),
            overdue_days=1,
            episode="e1",
        ),
        "finance--leaders_activities",
    )
    await rig.svc.settle()
    office = DEMO.headers("office-supervisor")
    r = await rig.client.post(
        "/supervisions",
        headers=office,
        json={"unit": "finance", "column": "leaders_activities", "working_days": 1},
    )
    assert r.status_code == 201, r.text
    rig.clock.set(at(D("2026-03-05")))
    await rig.svc.settle()
    [breach] = await rig.events("ViolationRecorded")
    assert breach.payload.kind == "stale_after_supervision"

    r = await rig.client.post(
        PATH.format(breach.aggregate_id),
        headers=office,
        json={"reason": "该镇已书面说明，督办事项按整改处理"},
    )
    assert r.status_code == 201, r.text
    # The column is refreshed afterwards: the case closes, and the violation is not rectified
    # a second time (its automatic rectification would have the same event id anyway).
    await rig.fact(
        ColumnRefreshed(
            unit="finance",
            column="leaders_activities",
            rule_set="wenan-2018",
            rule="fortnightly",
            rule_kind="periodic",
            episode="e1",
            due_date=D("2026-03-01"),
            resolution="published",
            stale_event_id=stale,
            met_on=D("2026-03-05"),
            late_days=4,
        ),
        "finance--leaders_activities",
    )
    await rig.svc.settle()
    closed = await rig.events("SupervisionClosed")
    assert [c.payload.outcome for c in closed] == ["after_deadline"]
    assert [p.how for p in await rectifications(rig)] == ["by_office"]
    # Nothing is left owing: the rectification the close would have asked for is not queued.
    assert rig.svc.model.list("todo") == []
