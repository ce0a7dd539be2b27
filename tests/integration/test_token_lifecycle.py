"""Token lifecycle (issue 13, part 5): expiry, revocation, replacement, the live-token list, and
Idempotency-Key on PUT.

Every probe goes to each of the four services: each authenticates from its own copy of the
directory, so each must fold TokenRevoked and compare expiries with its injected clock. "At
once" is tested with the copies held back: a service's directory cannot apply the revocation
until a request has found its copy behind the log and waited for it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from gongkai.calendar import local_date
from gongkai.directory import Directory
from gongkai.eventlog import RecordedEvent
from gongkai.events import Actor
from gongkai.events.contracts.intake import TokenIssued, TokenRevoked
from gongkai.refusal import Refusal
from gongkai.runtime.service import Service
from gongkai.tokens import new_token, token_hash, token_hint
from gongkai_demo.testing import DEMO, demo_token, seed_demo
from gongkai_intake.adapters.directory_log import issue_token_change, person_tokens, revoke_tokens
from tests.conftest import Platform

LEADER = "finance-leader"
OFFICE = "office-reader"
OPERATOR = Actor(person="operator:test", role="operator", unit="system")
GONGKAI = str(Path(sys.executable).parent / "gongkai")


def bearer(token: str, key: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Idempotency-Key": key or str(uuid.uuid4())}


#: One authenticated request per service, and who may make it. Authentication comes before
#: anything else, so a refused token gets 401 and records nothing; an accepted one gets
#: whatever the route answers (never 401).
PROBES: dict[str, tuple[str, str, dict[str, Any] | None]] = {
    "intake": ("GET", "/me", None),
    "review": ("GET", "/units/finance/review-policy", None),
    # An unknown column: a 404 after authentication, so the probe never records a decision.
    "freshness": (
        "PUT",
        "/units/finance/columns/no_such_column/visibility",
        {"visibility": "kept", "reason": "probe"},
    ),
    "accountability": ("GET", "/violations", None),
}


async def statuses(p: Platform, token: str) -> dict[str, int]:
    """Each service's answer to ``token``, all four asked at the same time."""

    async def probe(service: str) -> int:
        method, path, body = PROBES[service]
        r = await p.client.request(method, path, json=body, headers=bearer(token))
        if r.status_code == 401:
            assert r.json()["field"] == "Authorization"
        return r.status_code

    got = await asyncio.gather(*(probe(s) for s in PROBES))
    return dict(zip(PROBES, got, strict=True))


def refused(codes: dict[str, int]) -> bool:
    return all(c == 401 for c in codes.values())


def accepted(codes: dict[str, int]) -> bool:
    return all(c != 401 for c in codes.values())


def directory_of(svc: Service) -> Directory:
    d = svc.directory  # type: ignore[attr-defined]
    return d() if callable(d) else d  # type: ignore[no-any-return]


@pytest.fixture
async def county(platform: Platform) -> Platform:
    await seed_demo(platform.evlog, platform.clock.now(), units=("finance",))
    await platform.settle()
    return platform


async def issue(
    p: Platform, person: str, *, replace: bool, expires_in: timedelta = timedelta(days=90)
) -> tuple[str, Any]:
    token = new_token()
    now = p.clock.now()
    change = await issue_token_change(
        p.evlog,
        person,
        token_hash(token),
        token_hint(token),
        actor=OPERATOR,
        now=now,
        today=local_date(now),
        command_id=f"token-{uuid.uuid4()}",
        expires_at=now + expires_in,
        replace=replace,
    )
    return token, change


async def revoke(p: Platform, person: str, token: str | None = None) -> Any:
    now = p.clock.now()
    return await revoke_tokens(
        p.evlog,
        person,
        token,
        actor=OPERATOR,
        now=now,
        today=local_date(now),
        command_id=f"revoke-{uuid.uuid4()}",
    )


class HeldBack:
    """Holds each service's directory back from applying TokenRevoked until a request on that
    service has found its copy behind the log and started waiting for it."""

    def __init__(self, platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
        self.waited: dict[str, int] = {}
        for name, svc in platform.services.items():
            gate = threading.Event()
            projection = svc.directory_projection  # type: ignore[attr-defined]
            apply = svc.store.apply

            # Held before the batch's transaction begins: a read of the directory (on the event
            # loop) would otherwise queue behind its write lock.
            def held(
                proj: Any,
                events: list[RecordedEvent],
                apply: Any = apply,
                gate: Any = gate,
                mine: Any = projection,
                **kw: Any,
            ) -> int:
                if proj is mine and any(
                    isinstance(e.envelope.payload, TokenRevoked) for e in events
                ):
                    assert gate.wait(30), "no request waited for the revocation"
                return int(apply(proj, events, **kw))

            monkeypatch.setattr(svc.store, "apply", held)
            directory = directory_of(svc)
            log = directory.log
            assert log is not None
            wait_for = log.wait_for

            async def spy(
                seq: int,
                within: float,
                name: str = name,
                gate: Any = gate,
                wait_for: Any = wait_for,
            ) -> None:
                self.waited[name] = seq
                gate.set()
                await wait_for(seq, within)

            monkeypatch.setattr(log, "wait_for", spy)


# ---- expiry ----------------------------------------------------------------------------------


async def test_an_expired_token_gets_401_on_every_service(county: Platform) -> None:
    token, change = await issue(county, LEADER, replace=False, expires_in=timedelta(days=3))
    assert change.revoked == ()
    assert accepted(await statuses(county, token)), "a fresh token works at once"
    county.clock.advance(days=3, seconds=-1)
    assert accepted(await statuses(county, token))
    county.clock.advance(seconds=1)  # the expiry instant itself
    assert refused(await statuses(county, token))
    # The demo token, issued with the default 90 days, still works; past them it does not.
    assert accepted(await statuses(county, demo_token(LEADER)))
    county.clock.advance(days=88)
    assert refused(await statuses(county, demo_token(LEADER)))


async def test_an_expiry_is_recorded_in_the_event(county: Platform) -> None:
    before = await county.evlog.last_sequence()
    await issue(county, LEADER, replace=False, expires_in=timedelta(days=7))
    [rec] = [r async for r in county.evlog.replay(from_seq=before + 1)]
    payload = rec.envelope.payload
    assert isinstance(payload, TokenIssued) and rec.envelope.schema_version == 2
    assert payload.expires_at == county.clock.now() + timedelta(days=7)


# ---- revocation ------------------------------------------------------------------------------


async def test_a_revoked_token_gets_401_on_every_service_at_once(
    county: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    other, _ = await issue(county, LEADER, replace=False)
    assert accepted(await statuses(county, demo_token(LEADER)))
    held = HeldBack(county, monkeypatch)
    change = await revoke(county, LEADER, token_hint(demo_token(LEADER)))
    assert change.revoked == (token_hint(demo_token(LEADER)),)
    # No settle: no service's directory has applied the revocation yet.
    assert refused(await statuses(county, demo_token(LEADER)))
    assert held.waited == dict.fromkeys(PROBES, change.sequence), held.waited
    # Only that token: the person's other token and other people's still work.
    assert accepted(await statuses(county, other))
    assert accepted(await statuses(county, demo_token(OFFICE)))


async def test_revoking_without_a_token_revokes_all_of_the_persons_tokens(
    county: Platform,
) -> None:
    other, _ = await issue(county, LEADER, replace=False)
    change = await revoke(county, LEADER)
    assert sorted(change.revoked) == sorted([token_hint(other), token_hint(demo_token(LEADER))])
    assert refused(await statuses(county, other))
    assert refused(await statuses(county, demo_token(LEADER)))
    before = await county.evlog.last_sequence()
    again = await revoke(county, LEADER)  # nothing live: nothing recorded
    assert again.sequence is None and await county.evlog.last_sequence() == before
    with pytest.raises(Refusal) as exc:
        await revoke(county, LEADER, token_hint(other))
    assert exc.value.kind == "not_found"


async def test_the_office_revokes_over_http(county: Platform) -> None:
    victim, _ = await issue(county, LEADER, replace=False)
    url = f"/people/{LEADER}/tokens/revocation"
    r = await county.client.post(
        url, json={"token": token_hint(victim)}, headers=DEMO.headers(LEADER)
    )
    assert r.status_code == 403
    r = await county.client.post(
        url, json={"token": token_hint(victim)}, headers=DEMO.headers(OFFICE)
    )
    assert r.status_code == 200, r.text
    assert r.json()["changed"] is True
    assert refused(await statuses(county, victim))
    assert accepted(await statuses(county, demo_token(LEADER)))


# ---- replacement -----------------------------------------------------------------------------


async def test_a_new_token_replaces_the_old_ones_unless_kept(
    county: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept, change = await issue(county, LEADER, replace=False)
    assert change.revoked == ()
    assert accepted(await statuses(county, kept))
    assert accepted(await statuses(county, demo_token(LEADER)))
    held = HeldBack(county, monkeypatch)
    new, change = await issue(county, LEADER, replace=True)
    assert sorted(change.revoked) == sorted([token_hint(kept), token_hint(demo_token(LEADER))])
    assert refused(await statuses(county, kept))
    assert refused(await statuses(county, demo_token(LEADER)))
    assert accepted(await statuses(county, new))
    assert set(held.waited) == set(PROBES)


# ---- the list --------------------------------------------------------------------------------


async def test_the_list_shows_live_tokens_and_never_a_secret(county: Platform) -> None:
    now = county.clock.now()
    short, _ = await issue(county, LEADER, replace=False, expires_in=timedelta(days=1))
    revoked, _ = await issue(county, LEADER, replace=False)
    county.clock.advance(minutes=1)  # listed oldest first
    live, _ = await issue(county, LEADER, replace=False, expires_in=timedelta(days=30))
    await revoke(county, LEADER, revoked)  # by the token itself
    county.clock.advance(days=2)  # `short` has expired
    demo = demo_token(LEADER)

    listed = await person_tokens(county.evlog, LEADER, county.clock.now())
    assert [(t.hint, t.expires_at) for t in listed] == [
        (token_hint(demo), now + timedelta(days=90)),
        (token_hint(live), now + timedelta(days=30, minutes=1)),
    ]
    await county.settle()
    r = await county.client.get(f"/people/{LEADER}/tokens", headers=DEMO.headers(OFFICE))
    assert r.status_code == 200, r.text
    assert [t["hint"] for t in r.json()] == [token_hint(demo), token_hint(live)]
    for secret in (short, revoked, live, demo):
        assert secret not in r.text and token_hash(secret) not in r.text
        assert token_hash(secret)[:16] not in r.text
    r = await county.client.get(f"/people/{LEADER}/tokens", headers=DEMO.headers(LEADER))
    assert r.status_code == 403


async def test_the_cli_issues_replaces_lists_and_revokes(county: Platform) -> None:
    env = {
        **os.environ,
        "GONGKAI_NATS_URL": county.ctx.nats_url,
        "GONGKAI_TOKEN_LIFETIME_DAYS": "30",
    }

    async def gk(*args: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(
            subprocess.run,
            [GONGKAI, "people", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    first = await gk("token", LEADER, "--keep-others")
    assert first.returncode == 0, first.stderr
    token1 = first.stdout.strip()
    assert token1.startswith("gk_") and "valid until" in first.stderr
    assert "replaced" not in first.stderr
    second = await gk("token", LEADER)
    assert second.returncode == 0, second.stderr
    token2 = second.stdout.strip()
    # The CLI runs on the wall clock: the demo token (issued on the platform's fixed clock)
    # may have expired by then; the first one is replaced either way.
    assert "replaced (revoked)" in second.stderr and f"…{token_hint(token1)}" in second.stderr
    assert refused(await statuses(county, token1))
    assert accepted(await statuses(county, token2))
    listed = await gk("tokens", LEADER)
    assert listed.returncode == 0, listed.stderr
    assert f"…{token_hint(token2)}" in listed.stdout
    assert token_hint(token1) not in listed.stdout
    assert token2 not in listed.stdout and token_hash(token2)[:16] not in listed.stdout
    revoked = await gk("revoke", LEADER, token_hint(token2))
    assert revoked.returncode == 0, revoked.stderr
    assert f"…{token_hint(token2)}" in revoked.stdout
    assert refused(await statuses(county, token2))
    assert "no live token" in (await gk("tokens", LEADER)).stdout
    unknown = await gk("revoke", "nobody-here")
    assert unknown.returncode == 1 and "Unknown person" in unknown.stderr


# ---- Idempotency-Key on PUT ------------------------------------------------------------------


#: The events a PUT records (whatever else the platform records in reaction).
DECISIONS = frozenset({"ReviewPolicySet", "ColumnHidden", "ColumnKept"})


async def decisions(p: Platform, after: int) -> list[str]:
    await p.settle()
    return [
        f"{rec.envelope.type}:{rec.envelope.event_id}"
        async for rec in p.evlog.replay(from_seq=after + 1)
        if rec.envelope.type in DECISIONS
    ]


@pytest.mark.parametrize(
    ("path", "first", "other"),
    [
        (
            "/units/finance/review-policy",
            {"staff_stage": "always"},
            {"staff_stage": "important_only"},
        ),
        (
            "/units/finance/columns/statistics/visibility",
            {"visibility": "hidden", "reason": "统计局发布"},
            {"visibility": "kept", "reason": "我们发布"},
        ),
    ],
)
async def test_put_with_a_reused_key_replays_or_refuses(
    county: Platform, path: str, first: dict[str, str], other: dict[str, str]
) -> None:
    key = str(uuid.uuid4())
    headers = DEMO.headers(LEADER, key)
    before = await county.evlog.last_sequence()
    r1 = await county.client.put(path, json=first, headers=headers)
    assert r1.status_code == 200, r1.text
    assert r1.json()["changed"] is True
    assert "Idempotent-Replayed" not in r1.headers
    [recorded] = await decisions(county, before)

    again = await county.client.put(path, json=first, headers=headers)
    assert again.status_code == 200 and again.json() == r1.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await decisions(county, before) == [recorded]

    refused_ = await county.client.put(path, json=other, headers=headers)
    assert refused_.status_code == 422, refused_.text
    assert refused_.json()["field"] == "Idempotency-Key"
    assert await decisions(county, before) == [recorded]

    # A new key records the other value; the first key still answers as it did, recording
    # nothing, although the value it set has changed since.
    r2 = await county.client.put(path, json=other, headers=DEMO.headers(LEADER))
    assert r2.status_code == 200 and r2.json()["changed"] is True
    both = await decisions(county, before)
    assert len(both) == 2
    replay = await county.client.put(path, json=first, headers=headers)
    assert replay.json() == r1.json() and replay.headers["Idempotent-Replayed"] == "true"
    assert await decisions(county, before) == both
