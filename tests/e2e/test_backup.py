"""Backup and restore from the log: export a lived-in platform, import it into a fresh server,
and the copy is the same record — every projection rebuilt from it has the same digest, and
``audit verify`` holds its signed checkpoints against it.
"""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from gongkai import backup
from gongkai.eventlog import WRITE_TIME_HEADERS, EventLog, EventLogError
from gongkai.events import Envelope
from gongkai.natsserver import NatsServer
from gongkai.runtime.service import ServiceContext, discover
from gongkai.runtime.settings import Settings
from gongkai.trust.keys import Keyring, provision
from gongkai_accountability.adapters.log import verify_log
from gongkai_accountability.service import AccountabilityService
from gongkai_demo.county import seed_demo
from gongkai_demo.story import STORY_COLUMNS, DemoStory
from tests.conftest import Platform
from tests.e2e.test_demo import next_day
from tests.property.strategies import EVENT_TYPES, envelopes


async def lived_in(platform: Platform) -> None:
    """Three weeks of the demo county: posts, reviews, publications, supervision, violations,
    findings, freshness transitions, a signed checkpoint."""
    await seed_demo(platform.evlog, platform.clock.now(), units=list(STORY_COLUMNS))
    await platform.settle()
    await DemoStory(platform.client, now=platform.clock.now, out=io.StringIO()).run(
        directory_loaded=True
    )
    await next_day(platform, date(2026, 3, 23))
    await DemoStory(platform.client, now=platform.clock.now, out=io.StringIO()).run()
    await platform.settle()
    acc = platform.services["accountability"]
    assert isinstance(acc, AccountabilityService)
    assert await acc.checkpoint(force=True) == 1
    await platform.settle()


async def test_export_import_verify_and_every_projection_equal(
    platform: Platform, tmp_path: Path
) -> None:
    await lived_in(platform)
    dump = tmp_path / "gongkai.jsonl"
    with dump.open("w", encoding="utf-8") as out:
        exported = await backup.export_log(platform.evlog, out)
    last = await platform.evlog.last_sequence()
    assert exported == last
    types = {json.loads(line)["subject"].rsplit(".", 1)[-1]
             for line in dump.read_text().splitlines()[1:]}
    # What three weeks of the demo county produce (every type, byte for byte, is the next test).
    assert {"LogCheckpoint", "ViolationRecorded", "ReviewSigned", "ColumnStale"} <= types

    srv = NatsServer(store_dir=tmp_path / "restored-nats", sync_always=False).start()
    try:
        admin = await EventLog.connect(srv.url)
        await admin.ensure_stream()
        assert await backup.import_log(admin, dump) == last
        # Again: a resumed import finds everything there and stores nothing.
        assert await backup.import_log(admin, dump) == 0
        assert await admin.last_sequence() == last
        await admin.close()

        (tmp_path / "restored").mkdir()
        settings = Settings(
            data_dir=tmp_path / "restored", keys_dir=platform.ctx.settings.keys_path
        )
        ctx = ServiceContext(settings=settings, clock=platform.clock, nats_url=srv.url)
        restored = {name: build(ctx) for name, build in discover().items()}
        try:
            for svc in restored.values():
                await svc.start()
            for svc in restored.values():
                await svc.wait_caught_up(last, within=60)
            acc = restored["accountability"]
            result = await verify_log(acc.evlog)
            assert result.first_difference is None and not result.problems, result
            assert result.checkpoints >= 1
            for name, svc in restored.items():
                original = platform.services[name]
                for mine, theirs in zip(svc.projections, original.projections, strict=True):
                    assert svc.store.digest(mine) == original.store.digest(theirs), (
                        f"{name}/{mine.name} differs after restore"
                    )
        finally:
            for svc in reversed(list(restored.values())):
                await svc.stop()
    finally:
        await asyncio.to_thread(srv.stop)


def one_of_each_type() -> list[Envelope[Any]]:
    """A valid envelope of every registered event type, the same on every run."""
    drawn: list[tuple[Envelope[Any], ...]] = []

    @settings(max_examples=1, phases=[Phase.generate], derandomize=True, database=None,
              suppress_health_check=list(HealthCheck), deadline=None)
    @given(st.tuples(*(envelopes(t, pools={"aggregate_id": st.just("a1")}) for t in EVENT_TYPES)))
    def draw(envs: tuple[Envelope[Any], ...]) -> None:
        drawn.append(envs)

    draw()
    return [
        e.model_copy(update={"event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, e.type))})
        for e in drawn[0]
    ]


async def test_every_event_type_comes_back_byte_for_byte_with_its_signature(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    keys = tmp_path / "keys"
    provision(keys)
    writer = await EventLog.connect(nats_server.url, keys=Keyring.load(keys))
    await writer.ensure_stream()
    envs = one_of_each_type()
    assert sorted(e.type for e in envs) == EVENT_TYPES
    results = await writer.append_pipelined([(e, None) for e in envs])
    assert not [r for r in results if isinstance(r, Exception)]
    dump = tmp_path / "all.jsonl"
    with dump.open("w", encoding="utf-8") as out:
        assert await backup.export_log(writer, out) == len(envs)
    srv = NatsServer(store_dir=tmp_path / "copy", sync_always=False).start()
    try:
        copy = await EventLog.connect(srv.url, keys=Keyring.load(keys))
        await copy.ensure_stream()
        assert await backup.import_log(copy, dump) == len(envs)
        for seq in range(1, len(envs) + 1):
            a = await writer.js.get_msg(writer.stream, seq)
            b = await copy.js.get_msg(copy.stream, seq)
            kept, restored = (
                {k: v for k, v in (m.headers or {}).items()
                 if not k.startswith(WRITE_TIME_HEADERS)}
                for m in (a, b)
            )
            assert (a.subject, a.data, kept) == (b.subject, b.data, restored), seq
            assert "Gk-Sig" in kept and "Nats-Msg-Id" in kept
        # The copy's reader believes every event: the signatures travelled with them.
        believed = [rec.envelope.type async for rec in copy.replay()]
        assert sorted(believed) == EVENT_TYPES
        await copy.close()
    finally:
        await writer.close()
        await asyncio.to_thread(srv.stop)


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ('{"seq": 1, "subject": "gk.ev.x", "headers": {}, "data": "!!"}', "line 2"),
        ('{"seq": 2, "subject": "gk.ev.x", "headers": {}, "data": ""}', "sequence 1 missing"),
        ("not json", "line 2"),
    ],
    ids=["bad base64", "a gap", "not JSON"],
)
def test_a_damaged_export_is_refused_naming_the_line(tmp_path: Path, line: str, says: str) -> None:
    f = tmp_path / "bad.jsonl"
    f.write_text(json.dumps({"format": backup.FORMAT, "last_sequence": 1}) + "\n" + line + "\n")
    with pytest.raises(backup.ExportFileError, match=says):
        backup.check_file(f)


def test_a_cut_short_export_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "short.jsonl"
    f.write_text(json.dumps({"format": backup.FORMAT, "last_sequence": 5}) + "\n")
    with pytest.raises(backup.ExportFileError, match="cut short"):
        backup.check_file(f)


async def test_import_into_a_stream_holding_other_events_is_refused(
    evlog: EventLog, tmp_path: Path
) -> None:
    from gongkai.events import Actor, new_event
    from gongkai.events.contracts.intake import UnitRegistered

    env = new_event(
        UnitRegistered(code="finance", name="财政局", kind="department", contact_name="x",
                       contact_mobile="13800000000"),
        aggregate_id="finance", actor=Actor(person="s", role="system", unit="system"),
        command_id="c1", recorded_at=datetime(2026, 3, 2, tzinfo=UTC),
    )
    await evlog.append([env])
    other = env.model_copy(update={"payload": env.payload.model_copy(update={"name": "审计局"})})
    f = tmp_path / "other.jsonl"
    f.write_text(
        json.dumps({"format": backup.FORMAT, "last_sequence": 1}) + "\n"
        + json.dumps({"seq": 1, "subject": "gk.ev.unit.finance.UnitRegistered", "headers": {},
                      "data": __import__("base64").b64encode(other.to_json()).decode()}) + "\n"
    )
    with pytest.raises(EventLogError, match="not the export's"):
        await backup.import_log(evlog, f)
