"""A log nobody can rewrite unnoticed: signed Merkle checkpoints, verifiable offline.

Accountability runs on a real nats-server and signs a checkpoint every few events. The log is
then copied, event by event with its signature headers, into a second nats-server four times:
clean, with one event altered, with one dropped, with two swapped. ``gongkai audit verify``
passes on the clean copy and names the first sequence that differs in each tampered one; the
rebuild folds nothing that fails. An inclusion proof and a consistency proof printed by
``gongkai audit prove`` verify with ``tools/verify_proof.py``, which imports nothing of gongkai,
and a proof with one byte changed does not.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bench.bench_accountability import post_events
from gongkai import subjects
from gongkai.eventlog import EventLog, StreamSettings
from gongkai.events import new_event
from gongkai.natsserver import NatsServer
from gongkai.trust.checkpoint import key_name, verifier_key
from gongkai.trust.keys import raw_public
from gongkai_accountability.adapters.checkpoints import CheckpointSettings, load_chain
from gongkai_accountability.adapters.log import fold_log, verify_log
from gongkai_accountability.domain.tables import POST
from gongkai_accountability.service import AccountabilityService
from tests.builders import post_submitted
from tests.conftest import PLATFORM_T0, Platform

ROOT = Path(__file__).resolve().parents[2]
VERIFIER = ROOT / "tools" / "verify_proof.py"
GONGKAI = Path(sys.executable).parent / "gongkai"

Copied = list[tuple[str, bytes, dict[str, str]]]


async def record(p: Platform, posts: int) -> None:
    """A county's posts (four events each), signed by their owners, and one forged event."""
    batch: list[tuple[Any, int | None]] = []
    for i in range(posts):
        batch += [(e, None) for e in post_events(i)]
    res = await p.evlog.append_pipelined(batch)
    assert not [r for r in res if isinstance(r, Exception)]


async def forge(p: Platform) -> int:
    env = new_event(
        post_submitted(
            unit="u1",
            column="work_arrangements",
            title="forged",
            body="x",
            information_date=PLATFORM_T0.date(),
            content_digest="c" * 64,
        ),
        aggregate_id="FORGED",
        actor=post_events(0)[0].actor,
        command_id="forged",
        recorded_at=PLATFORM_T0,
    )
    subject = subjects.event_subject(env.aggregate_type, env.aggregate_id, env.type)
    ack = await p.evlog.js.publish(subject, env.to_json(), stream=subjects.STREAM)  # unsigned
    return int(ack.seq)


async def read_all(evlog: EventLog) -> Copied:
    out: Copied = []
    async for msg in evlog.raw_replay():
        keep = {k: v for k, v in (msg.headers or {}).items() if k in ("Gk-Key", "Gk-Sig")}
        out.append((msg.subject, msg.data, keep))
    return out


async def replay_into(url: str, events: Copied) -> None:
    """A second stream holding ``events`` in this order, headers (signatures) and all."""
    evlog = await EventLog.connect(url)
    try:
        await evlog.ensure_stream(StreamSettings(duplicate_window_s=1))
        for subject, data, headers in events:
            await evlog.js.publish(subject, data, stream=subjects.STREAM, headers=headers or None)
    finally:
        await evlog.close()


def gongkai(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(GONGKAI), "audit", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
    )


def standalone(proof: str, vkey: str) -> subprocess.CompletedProcess[str]:
    """tools/verify_proof.py in a bare interpreter: -I ignores PYTHONPATH and the venv's
    site-packages path hooks for gongkai's sources; cryptography comes from site-packages."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        f.write(proof)
    try:
        return subprocess.run(
            [sys.executable, str(VERIFIER), "--key", vkey, "--origin", "gongkai/GONGKAI", f.name],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tempfile.gettempdir(),
        )
    finally:
        os.unlink(f.name)


def test_the_verifier_imports_nothing_of_gongkai() -> None:
    text = VERIFIER.read_text()
    assert "gongkai" not in "".join(
        line for line in text.splitlines() if line.startswith(("import", "from"))
    )


@pytest.mark.services("accountability")
async def test_tampered_copies_fail_at_the_right_sequence(platform: Platform) -> None:
    acc = platform.services["accountability"]
    assert isinstance(acc, AccountabilityService) and acc.checkpointer is not None
    acc.checkpointer.settings = CheckpointSettings(every=16, minutes=60)

    await record(platform, 10)  # 40 events
    forged = await forge(platform)
    await record_more(platform, 10, 20)  # 40 more
    await platform.settle()
    await acc.settle()
    before = await platform.evlog.last_sequence()
    await acc.checkpoint(force=True)
    await platform.settle()

    chain = await load_chain(platform.evlog)
    assert len(chain.checkpoints) >= 5
    # The forced one covers the whole log as it stood (accountability may append after it).
    assert chain.covered >= before
    assert forged in chain.rejected  # the unsigned event is listed, never applied
    # For showing (the integrity page): the same checkpoints and verdicts without the tiles,
    # read whole or on from a chain read before.
    for bare in (
        await load_chain(platform.evlog, keep_tiles=False),
        await load_chain(platform.evlog, after=chain.without_tiles(), keep_tiles=False),
        chain.without_tiles(),
    ):
        assert [(c.seq, c.size, c.first, c.root, c.tile) for c in bare.checkpoints] == [
            (c.seq, c.size, c.first, c.root, b"") for c in chain.checkpoints
        ]
        assert (bare.covered, bare.rejected, bare.problems, bare.expected) == (
            chain.covered, chain.rejected, chain.problems, bytearray()
        )
    assert len(chain.expected) == 32 * chain.covered  # the chain itself keeps its tiles

    clean = await verify_log(platform.evlog)
    assert clean.problems == [] and clean.first_difference is None
    rebuilt = await fold_log(platform.evlog)
    assert rebuilt.rejected == 1 and rebuilt.rows.get("post", "FORGED") is None
    assert rebuilt.by_checkpoint == chain.covered

    original = await read_all(platform.evlog)
    # A PostSubmitted well inside the checkpointed range (sequence s is original[s - 1]).
    s = next(
        i + 1
        for i, (subj, _, _) in enumerate(original)
        if i + 1 > 20 and subj.endswith(".PostSubmitted")
    )
    assert s < chain.covered
    altered = list(original)
    subj, data, hdr = altered[s - 1]
    altered[s - 1] = (subj, data.replace(b'"title":"t', b'"title":"T'), hdr)
    assert altered[s - 1][1] != data
    dropped = original[: s - 1] + original[s:]
    swapped = list(original)
    swapped[s - 1], swapped[s] = swapped[s], swapped[s - 1]

    cases: dict[str, tuple[Copied, int | None]] = {
        "clean": (original, None),
        "altered": (altered, s),
        "dropped": (dropped, s),
        "swapped": (swapped, s),
    }
    for name, (events, want) in cases.items():
        with tempfile.TemporaryDirectory(prefix="gongkai-copy-") as d:
            srv = NatsServer(store_dir=Path(d), sync_always=False).start()
            try:
                await replay_into(srv.url, events)
                res = await asyncio.to_thread(gongkai, "verify", "--nats-url", srv.url)
                if want is None:
                    assert res.returncode == 0, (name, res.stdout, res.stderr)
                    assert "log verified" in res.stdout
                else:
                    assert res.returncode == 1, (name, res.stdout, res.stderr)
                    assert f"first sequence that differs: {want}\n" in res.stdout, (
                        name,
                        res.stdout,
                    )
                # The rebuild never folds what fails: the altered post is not in the rows.
                copy = await EventLog.connect(srv.url)
                try:
                    folded = await fold_log(copy)
                finally:
                    await copy.close()
                if name == "altered":
                    assert folded.rejected == 2  # the forged one and the altered one
                    post = folded.rows.get(POST, json.loads(data)["aggregate_id"])
                    assert post is None or not post.title.startswith("T")
                if name == "clean":
                    assert folded.rejected == 1
            finally:
                srv.stop()

    # Proofs, checked offline by the standalone verifier with only the public key.
    keys = platform.evlog.keys
    assert keys is not None
    vkey = verifier_key(key_name(), keys.private["accountability"].public)
    listed = await asyncio.to_thread(gongkai, "checkpoint-key")
    assert vkey in listed.stdout

    event_id = json.loads(original[s - 1][1])["event_id"]
    url = platform.ctx.nats_url
    inc = await asyncio.to_thread(gongkai, "prove", event_id, "--nats-url", url)
    assert inc.returncode == 0, inc.stderr
    ok = standalone(inc.stdout, vkey)
    assert ok.returncode == 0 and ok.stdout.startswith("OK:"), ok.stdout
    assert event_id in ok.stdout

    sizes = sorted(c.size for c in chain.checkpoints)
    cons = await asyncio.to_thread(
        gongkai, "prove", "--consistency", str(sizes[1]), str(sizes[-1]), "--nats-url", url
    )
    assert cons.returncode == 0, cons.stderr
    ok = standalone(cons.stdout, vkey)
    assert ok.returncode == 0, ok.stdout
    assert f"size {sizes[1]} is a prefix of the signed tree of size {sizes[-1]}" in ok.stdout

    # What does not verify: an altered event, a proof for another leaf, another key.
    doc = json.loads(inc.stdout)
    tampered = [
        _with(doc, "event", lambda e: e[:-4] + ("AAAA" if e[-4:] != "AAAA" else "BBBB")),
        _with(doc, "leaf_index", lambda i: i + 1),
        _with(doc, "checkpoint", lambda n: n.replace(f"\n{doc['tree_size']}\n", "\n1\n", 1)),
    ]
    for bad in tampered:
        res = standalone(json.dumps(bad), vkey)
        assert res.returncode == 1 and res.stdout.startswith("FAILED"), res.stdout
    other = verifier_key(key_name(), raw_public(keys.private["review"].private.public_key()))
    assert standalone(inc.stdout, other).returncode == 1
    cdoc = json.loads(cons.stdout)
    cdoc["proof"] = cdoc["proof"][:-1]
    assert standalone(json.dumps(cdoc), vkey).returncode == 1


async def record_more(p: Platform, start: int, stop: int) -> None:
    batch: list[tuple[Any, int | None]] = []
    for i in range(start, stop):
        batch += [(e, None) for e in post_events(i)]
    res = await p.evlog.append_pipelined(batch)
    assert not [r for r in res if isinstance(r, Exception)]


@pytest.mark.services("accountability")
async def test_the_checkpointer_hashes_what_the_projection_read_without_reading_it_again(
    platform: Platform,
) -> None:
    """Once its tree is loaded, the live checkpointer hashes the events its projection read
    (``Checkpointer.take``) and reads none of them from the log a second time; the checkpoints
    fall every 8 events as before, and each one's root and tile hold against the log."""
    acc = platform.services["accountability"]
    assert isinstance(acc, AccountabilityService) and acc.checkpointer is not None
    cp = acc.checkpointer
    cp.settings = CheckpointSettings(every=8, minutes=60)
    await record(platform, 3)
    await platform.settle()
    await acc.settle()
    await acc.checkpoint(force=True)  # the tree loaded and the log so far hashed
    read_back, taken, hashed = cp.read_back, cp.taken, cp.hashed
    await record_more(platform, 3, 12)  # 36 events
    await platform.settle()
    await acc.settle()
    await acc.checkpoint(force=True)
    assert cp.read_back == read_back
    assert cp.taken - taken == cp.hashed - hashed >= 36
    chain = await load_chain(platform.evlog)
    # The forced checkpoint covers what was hashed then (a tick may hash it too, after it).
    assert chain.problems == [] and hashed + 36 <= chain.covered <= cp.hashed
    tiles = [c.size - c.first + 1 for c in chain.checkpoints]
    assert len([t for t in tiles if t != 8]) <= 2, tiles  # the two forced ones at most
    assert (await verify_log(platform.evlog)).problems == []


@pytest.mark.services("accountability")
async def test_two_checkpoint_runs_at_once_take_turns(platform: Platform) -> None:
    """The service's tick and a direct ``checkpoint`` may ask one checkpointer at the same
    moment. The second run waits for the first: each event is hashed into the tree once, and
    each checkpoint holds against the log (before, the second read the log beside the first
    and found its sequences out of step, or appended a checkpoint at a size not yet settled)."""
    acc = platform.services["accountability"]
    assert isinstance(acc, AccountabilityService) and acc.checkpointer is not None
    await record(platform, 5)
    await platform.settle()
    await acc.settle()
    cp = type(acc.checkpointer)(
        platform.evlog, acc.checkpointer.key, settings=CheckpointSettings(every=8, minutes=60)
    )
    upto = await platform.evlog.last_sequence()
    await asyncio.gather(cp.run(upto, force=True), cp.run(upto, force=True))
    assert upto <= cp.hashed and cp.read_back == cp.hashed
    chain = await load_chain(platform.evlog)
    assert chain.problems == [] and chain.checkpoints
    assert (await verify_log(platform.evlog)).problems == []


def _with(doc: dict[str, Any], key: str, change: Callable[[Any], Any]) -> dict[str, Any]:
    out = json.loads(json.dumps(doc))
    out[key] = change(out[key])
    return out


@pytest.mark.services("accountability")
async def test_a_restarted_checkpointer_continues_from_the_last_checkpoint(
    platform: Platform,
) -> None:
    acc = platform.services["accountability"]
    assert isinstance(acc, AccountabilityService) and acc.checkpointer is not None
    acc.checkpointer.settings = CheckpointSettings(every=8, minutes=60)
    await record(platform, 5)
    await platform.settle()
    await acc.settle()
    await acc.checkpoint(force=True)
    # The last checkpoint in the log, not the tree's size: where the log ends with checkpoints
    # only (a tile of 8 completed by its last post's events, as the service's tick may have
    # made it while the posts were being appended), the forced run appends nothing more and
    # the tree is ahead of it by those checkpoints (a failure seen under load in stop 26).
    last = acc.checkpointer.last_size
    assert 0 < last <= acc.checkpointer.hashed
    again = type(acc.checkpointer)(
        platform.evlog, acc.checkpointer.key, settings=acc.checkpointer.settings
    )
    await again.load()
    assert again.warning is None
    assert again.hashed == again.last_size == last  # one message read, not the whole log
    assert again.read_back == 0
    await record_more(platform, 5, 9)
    await platform.settle()
    await again.run(await platform.evlog.last_sequence(), force=True)
    assert (await verify_log(platform.evlog)).problems == []
