"""The rebuild's reader process gives the fold exactly what an in-process replay gives it."""

from __future__ import annotations

import contextlib
import gc
import threading

import nats
import pytest

from bench.bench_accountability import post_events
from gongkai.eventlog import EventLog, EventLogError, _Unparsed
from gongkai.prefetch import BATCH, prefetched
from gongkai_accountability.adapters.checkpoints import Checkpointer, CheckpointSettings
from gongkai_accountability.adapters.log import fold_log


async def _load(evlog: EventLog, posts: int) -> None:
    await evlog.append_pipelined([(e, None) for i in range(posts) for e in post_events(i)])
    # A message the fold cannot decode: counted, skipped the same way on both paths.
    await evlog.nc.publish("gk.ev.intake.P9.PostSubmitted", b"{not json")
    await evlog.nc.flush()


async def test_reader_process_and_in_process_fold_alike(
    evlog: EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _load(evlog, 1200)  # 4,801 messages: more than two batches
    monkeypatch.setenv("GONGKAI_REPLAY_PREFETCH", "off")
    here = await fold_log(evlog)
    monkeypatch.setenv("GONGKAI_REPLAY_PREFETCH", "on")
    there = await fold_log(evlog)
    # No checkpoint yet: every event's signature is checked; the unsigned one is refused.
    assert (there.events, there.last_seq, there.rejected) == (4801, 4801, 1)
    assert (here.events, here.last_seq, here.rejected) == (4801, 4801, 1)
    assert here.by_signature == there.by_signature == 4800
    assert there.rows.tables == here.rows.tables
    assert len(here.rows.tables["post"]) == 1200

    # Signed checkpoints over it all: each event is one hash against a tile, on both paths
    # (the reader process hashes what it reads). Nobody listed the unsigned message as
    # rejected here, so it reaches the decoder, which cannot read it.
    keys = evlog.keys
    assert keys is not None
    cp = Checkpointer(evlog, keys.private["accountability"], settings=CheckpointSettings(1000))
    assert await cp.run(4801, force=True) == 5
    monkeypatch.setenv("GONGKAI_REPLAY_PREFETCH", "off")
    here2 = await fold_log(evlog)
    monkeypatch.setenv("GONGKAI_REPLAY_PREFETCH", "on")
    there2 = await fold_log(evlog)
    for res in (here2, there2):
        assert (res.by_checkpoint, res.by_signature, res.undecodable) == (4801, 0, 1)
        assert res.rows.tables == here.rows.tables

    # As the rebuild command folds: what the fold built is frozen, not collected, and the
    # collector is on again afterwards, the rows the same.
    frozen_before = gc.get_freeze_count()
    try:
        frozen = await fold_log(evlog, freeze=True)
        assert gc.isenabled() and gc.get_freeze_count() > frozen_before
    finally:
        gc.unfreeze()  # the test process goes on: leave nothing out of the collector's sight
    assert frozen.rows.tables == here.rows.tables


async def test_batches_keep_stream_order_and_filter_types(
    evlog: EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _load(evlog, 600)
    monkeypatch.setenv("GONGKAI_REPLAY_PREFETCH", "on")
    seqs: list[int] = []
    seen = 0
    async for batch in prefetched(evlog, {"PostPublished"}):
        assert batch.seen > seen
        seen = batch.seen
        seqs += [s for s, t, _ in batch.events if t == "PostPublished"]
    assert seen == 2401
    assert seqs == sorted(seqs) and len(seqs) == 600


async def test_a_read_given_up_early_leaves_no_pump_behind(
    evlog: EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pipe is drained by a thread up to ``AHEAD`` batches before the fold: a fold that
    stops after one batch (an error, a cancelled rebuild) ends the reader and that thread."""
    await _load(evlog, 1500)  # 6,001 messages: three batches, the pump ahead of the fold
    monkeypatch.setenv("GONGKAI_REPLAY_PREFETCH", "on")
    async with contextlib.aclosing(prefetched(evlog)) as batches:
        async for batch in batches:
            assert batch.seen == BATCH
            break
    assert not [t for t in threading.enumerate() if t.name == "prefetch-pipe"]


async def test_reader_that_cannot_connect_is_an_error_not_a_hang(
    evlog: EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _load(evlog, 10)
    monkeypatch.setenv("GONGKAI_REPLAY_PREFETCH", "on")
    evlog.connect_args = ("nats://127.0.0.1:1", {"connect_timeout": 1, "allow_reconnect": False})
    with pytest.raises(EventLogError, match="reader process failed"):
        async for _ in prefetched(evlog):
            pass


async def test_headers_read_when_wanted_are_what_nats_py_parses(evlog: EventLog) -> None:
    """An ``EventLog``'s connection (the reader process's too) leaves headers unparsed until
    read: whatever reads them (the signatures' check, the pull read's status messages, a
    JetStream API answer) gets what nats-py gives on an ordinary connection."""
    await _load(evlog, 300)
    assert evlog.connect_args is not None
    url, options = evlog.connect_args
    plain = EventLog(await nats.connect(url, **options))
    plain.stream = evlog.stream
    try:
        # More than one pull request's worth (FOLLOW_BATCH), as the reader reads.
        parsed = [(m.subject, m.headers) async for m in plain.raw_replay()]
        lazy = [(m.subject, m.headers) async for m in evlog.raw_replay()]
        assert len(lazy) == len(parsed) == 1201
        assert not any(isinstance(h, _Unparsed) for _, h in parsed)
        # Every event's headers left unparsed; the one message published without any has none.
        assert sum(isinstance(h, _Unparsed) for _, h in lazy) == 1200
        assert [h for _, h in lazy if not isinstance(h, _Unparsed)] == [None]
        assert [(s, None if h is None else dict(h)) for s, h in lazy] == parsed
        assert sum(bool(h and h.get("Gk-Sig")) for _, h in parsed) == 1200  # signed
        for (_, h), (_, want) in zip(lazy, parsed, strict=True):
            if isinstance(h, _Unparsed):
                assert want is not None
                # What the trust check and nats-py's readers ask of them.
                assert h.get("Gk-Sig") == want.get("Gk-Sig")
                assert h.get("No-Such-Header", "x") == "x"
                assert ("Gk-Key" in h) == ("Gk-Key" in want)
                assert h.parsed() == want
        assert await evlog.last_sequence() == 1201  # a JetStream API request and answer
        assert await plain.last_sequence() == 1201
    finally:
        await plain.close()
