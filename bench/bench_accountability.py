"""Rebuild accountability from N events (default 1,000,000) beside the raw replay rate.

    .venv/bin/python -m bench.bench_accountability [N]

Writes a county's life into a throwaway nats-server (posts, leader signatures, approvals,
publications; one in fifty published without review), then measures in the same run:
the raw ordered-consumer rate (nats-py's own, messages counted, nothing decoded:
``raw_ordered_read``, bench_eventlog's replay baseline too) and ``gongkai audit rebuild``'s
path (decode what the fold reads, fold, write every row and the checkpoint).

Every event is signed by its owner as the services sign, and accountability's signed Merkle
checkpoints (one every 1,000 events) are written as the log grows; the rebuild verifies every
event before folding it: one note signature per checkpoint, one hash per event against the
checkpoints' tiles (hashed in the reader process), a signature per event after the last one.

Beside each wall time, the client's CPU seconds (this process and the rebuild's reader
process; not the nats-server): on a shared machine they move far less than the wall time.
"""

from __future__ import annotations

import asyncio
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import Baseline, Figure, Timer, raw_ordered_read, server, table
from gongkai.eventlog import EventLog, StreamSettings
from gongkai.events import Actor, new_event
from gongkai.events.contracts.intake import (
    PostPublished,
    PostSubmitted,
    RoleGranted,
    UnitRegistered,
)
from gongkai.events.contracts.review import ReviewConcluded, ReviewSigned
from gongkai.projection import ProjectionStore, make_engine
from gongkai.trust.keys import provision
from gongkai_accountability.adapters.checkpoints import Checkpointer
from gongkai_accountability.adapters.log import fold_log
from gongkai_accountability.adapters.sql import PAGE_SIZE, AccountabilityProjection

T0 = datetime(2026, 3, 2, 1, tzinfo=UTC)
MAKER = Actor(person="m", role="maker", unit="u1")
LEADER = Actor(person="l", role="leader", unit="u1")
CMS = Actor(person="cms", role="office", unit="county-office")
DIG = "a" * 64


def directory() -> list[Any]:
    """The 25 units and their maker and leader, set up by the operator's tools: every leader
    signature of the log has its authority (accountability checks it)."""
    setup = Actor(person="operator:bench", role="operator", unit="system")
    at = T0 - timedelta(days=1)
    out: list[Any] = []
    for u in range(25):
        unit = f"u{u}"
        out.append(
            new_event(
                UnitRegistered(
                    code=unit, name=unit, kind="department", contact_name="x", contact_mobile="x"
                ),
                aggregate_id=unit,
                actor=setup,
                command_id=f"unit-{unit}",
                recorded_at=at,
            )
        )
        for person, role in ((MAKER.person, "maker"), (LEADER.person, "leader")):
            out.append(
                new_event(
                    RoleGranted(person_id=person, unit=unit, role=role),
                    aggregate_id=person,
                    actor=setup,
                    command_id=f"grant-{unit}-{role}",
                    recorded_at=at,
                )
            )
    return out


def post_events(i: int) -> list[Any]:
    """Four events per post: submitted, signed, approved, published."""
    unit = f"u{i % 25}"
    at = T0 + timedelta(seconds=i)
    pid = f"P{i}"
    sub = new_event(
        PostSubmitted(
            unit=unit,
            column="work_arrangements",
            title=f"t{i}",
            body="正文" * 20,
            origin="produced",
            channel="website",
            information_date=at.date(),
            content_digest=DIG,
        ),
        aggregate_id=pid,
        actor=MAKER,
        command_id=f"s{i}",
        recorded_at=at,
    )
    leader = Actor(person=LEADER.person, role="leader", unit=unit)
    sig = new_event(
        ReviewSigned(
            post_id=pid,
            chain=1,
            stage="leader",
            decision="agree",
            signer=leader,
            content_digest=DIG,
        ),
        aggregate_id=pid,
        actor=leader,
        command_id=f"g{i}",
        recorded_at=at,
    )
    con = new_event(
        ReviewConcluded(post_id=pid, chain=1, outcome="approved", content_digest=DIG),
        aggregate_id=pid,
        actor=leader,
        command_id=f"c{i}",
        recorded_at=at,
    )
    unreviewed = i % 50 == 0
    pub = new_event(
        PostPublished(
            publication_id=f"pub{i}",
            post_id=pid,
            unit=unit,
            column="work_arrangements",
            url=f"https://x/{i}",
            online_at=at,
            content_digest="b" * 64 if unreviewed else DIG,
        ),
        aggregate_id=f"pub{i}",
        actor=CMS,
        command_id=f"p{i}",
        recorded_at=at,
    )
    return [sub, sig, con, pub]


def cpu_seconds() -> float:
    """CPU time of this process and of its children that have ended (the rebuild's reader
    process; not the nats-server, still running): steadier than wall time on a shared machine.
    """
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


async def measure(n: int) -> list[Figure]:
    keys_dir = tempfile.TemporaryDirectory(prefix="gongkai-bench-keys-")
    keys = provision(Path(keys_dir.name))
    with server() as srv:
        evlog = await EventLog.connect(srv.url, keys=keys)
        await evlog.ensure_stream(StreamSettings(duplicate_window_s=120))
        cp = Checkpointer(evlog, keys.private["accountability"])
        with Timer() as w:
            batch: list[tuple[Any, int | None]] = [(e, None) for e in directory()]
            for i in range(n // 4):
                batch += [(e, None) for e in post_events(i)]
                if len(batch) >= 20000:
                    await evlog.append_pipelined(batch)
                    await cp.run(await evlog.last_sequence())
                    batch = []
            if batch:
                await evlog.append_pipelined(batch)
            await cp.run(await evlog.last_sequence(), force=True)
        total = await evlog.last_sequence()
        raw_s, cpu_raw = await raw_ordered_read(srv.url, total)
        with tempfile.TemporaryDirectory() as d:
            projection = AccountabilityProjection()
            # Made as the service makes its database (its page size).
            store = ProjectionStore(
                make_engine(f"sqlite:///{Path(d) / 'acc.db'}", page_size=PAGE_SIZE)
            )
            store.prepare(projection)
            cpu0 = cpu_seconds()
            with Timer() as rb:
                res = await fold_log(evlog, freeze=True)  # as gongkai audit rebuild
                projection.write_all(store.engine, res.rows, res.last_seq)
            cpu_rb = cpu_seconds() - cpu0
            violations = len(res.rows.tables["violation"]) + len(res.rows.tables["todo"])
            assert res.rejected == 0 and res.by_checkpoint is not None
            # The same rebuild believing every byte (no trust anchors): what verifying costs.
            evlog.keys = None
            cpu0 = cpu_seconds()
            with Timer() as un:
                unv = await fold_log(evlog, freeze=True)
                projection.write_all(store.engine, unv.rows, unv.last_seq)
            cpu_un = cpu_seconds() - cpu0
            evlog.keys = keys
        await evlog.close()
    keys_dir.cleanup()
    raw_rate = total / raw_s
    rb_rate = total / rb.seconds
    print(
        table(
            [
                (
                    "append (pipelined, signed, checkpointed)",
                    f"{total:,}",
                    f"{w.seconds:.1f}",
                    f"{total / w.seconds:,.0f}",
                    "",
                    "",
                ),
                (
                    "raw ordered consumer",
                    f"{total:,}",
                    f"{raw_s:.2f}",
                    f"{raw_rate:,.0f}",
                    "100%",
                    f"{cpu_raw:.2f}",
                ),
                (
                    "accountability rebuild",
                    f"{total:,}",
                    f"{rb.seconds:.2f}",
                    f"{rb_rate:,.0f}",
                    f"{100 * rb_rate / raw_rate:.0f}%",
                    f"{cpu_rb:.2f}",
                ),
                (
                    "rebuild, unverified (same run)",
                    f"{total:,}",
                    f"{un.seconds:.2f}",
                    f"{total / un.seconds:,.0f}",
                    f"{100 * total / un.seconds / raw_rate:.0f}%",
                    f"{cpu_un:.2f}",
                ),
                (
                    f"  verified: {res.by_checkpoint:,} by checkpoint, "
                    f"{res.by_signature:,} by signature",
                    "",
                    "",
                    "",
                    "",
                    "",
                ),
                (
                    "  of which fold only",
                    f"{total:,}",
                    f"{res.seconds:.2f}",
                    f"{res.rate:,.0f}",
                    "",
                    "",
                ),
            ],
            ("path", "events", "s", "events/s", "of raw", "client CPU s"),
        )
    )
    print(f"unreviewed publications found: {violations:,} (expected {len(range(0, n // 4, 50)):,})")
    return [
        Figure(
            f"accountability: rebuild, verified, {total:,} events",
            rb_rate,
            "events/s",
            Baseline("raw ordered consumer, same log", raw_rate),
            share_target=0.40,
        ),
    ]


def main(argv: list[str] | None = None) -> list[Figure]:
    args = sys.argv[1:] if argv is None else argv
    return asyncio.run(measure(int(args[0]) if args else 1_000_000))


if __name__ == "__main__":
    main()
