"""A unit's keep/hide choices (freshness's events) decide which columns it can post to."""

from __future__ import annotations

from typing import Any

import pytest

from gongkai.events import Actor, new_event
from gongkai.events.contracts.freshness import ColumnHidden, ColumnKept
from gongkai_demo.testing import DEMO, intake_events_after, seed_demo
from tests.conftest import Platform


@pytest.fixture
async def intake(platform: Platform) -> Platform:
    await seed_demo(platform.evlog, platform.clock.now(), units=("finance", "housing"))
    await platform.settle()
    return platform


async def choose(p: Platform, unit: str, column: str, hidden: bool, n: int) -> None:
    payload: Any = (ColumnHidden if hidden else ColumnKept)(
        unit=unit, column=column, reason="对照附件2勾选"
    )
    env = new_event(
        payload,
        aggregate_id=f"{unit}--{column}",
        actor=Actor(person=f"{unit}-leader", role="leader", unit=unit),
        command_id=f"choice-{unit}-{column}-{n}",
        recorded_at=p.clock.now(),
    )
    await p.evlog.append([env])
    await p.settle()


async def submit(p: Platform, unit: str, column: str) -> Any:
    return await p.client.post(
        "/posts",
        json={
            "unit": unit,
            "column": column,
            "title": "标题",
            "body": "正文",
            "information_date": "2026-03-01",
        },
        headers=DEMO.headers(f"{unit}-maker"),
    )


async def test_hidden_column_refuses_posts_until_kept_again(intake: Platform) -> None:
    assert (await submit(intake, "finance", "statistics")).status_code == 201
    await choose(intake, "finance", "statistics", hidden=True, n=1)
    before = await intake.evlog.last_sequence()
    r = await submit(intake, "finance", "statistics")
    assert (r.status_code, r.json()["field"], r.json()["title"]) == (422, "column", "Column hidden")
    assert await intake_events_after(intake.evlog, before) == []
    # Another unit's choice is its own.
    assert (await submit(intake, "housing", "statistics")).status_code == 201
    await choose(intake, "finance", "statistics", hidden=False, n=2)
    assert (await submit(intake, "finance", "statistics")).status_code == 201


async def test_column_hidden_by_default_opens_when_the_unit_keeps_it(intake: Platform) -> None:
    # Housing security starts hidden; the housing bureau ticks ✓ for it (Attachment 2).
    assert (await submit(intake, "housing", "housing_security")).status_code == 422
    await choose(intake, "housing", "housing_security", hidden=False, n=1)
    assert (await submit(intake, "housing", "housing_security")).status_code == 201
    assert (await submit(intake, "finance", "housing_security")).status_code == 422


# Only intake: the other services would react to every seeded unit and slow each test.
pytestmark = pytest.mark.services("intake")
