"""Reading the log straight into the fold: rebuilds, as-of queries, verify."""

from __future__ import annotations

import gc
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from gongkai.access import masked_event
from gongkai.eventlog import EventLog, ack_position
from gongkai.events import EventDecodeError, canonical_json
from gongkai.prefetch import prefetched
from gongkai_accountability.domain.fold import RELEVANT, evolve, local_date
from gongkai_accountability.domain.rows import MemoryRows


@dataclass
class FoldResult:
    rows: MemoryRows
    last_seq: int
    events: int
    seconds: float
    undecodable: int = 0

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


async def fold_log(
    evlog: EventLog,
    *,
    until: date | None = None,
    progress: Callable[[int, int], None] | None = None,
    every: int = 20000,
) -> FoldResult:
    """Fold the whole log (or what was recorded up to the end of ``until``, Shanghai) in order.

    Events the fold does not read are skipped before decoding: the subject names the type.
    """
    rows = MemoryRows()
    total = await evlog.last_sequence()
    t0 = time.perf_counter()
    n = last = bad = 0
    decode = evlog.registry.decode
    next_progress = every
    # The fold builds a few hundred thousand long-lived, acyclic rows; the cyclic collector
    # would rescan them again and again (a sixth of a million-event rebuild). It is off for
    # the fold only, and whatever garbage the fold left is collected right after.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        async for batch in prefetched(evlog, RELEVANT, total=total):
            for seq, etype, data in batch.events:
                try:
                    env = decode(data, subject_type=etype)
                except EventDecodeError:
                    bad += 1  # the live projection dead-letters it; verify reports it
                    continue
                if until is not None and local_date(env.recorded_at) > until:
                    continue
                evolve(rows, masked_event(env), seq)  # as the live projection folds it
            n, last = batch.seen, batch.last_seq
            if progress is not None and n >= next_progress:
                progress(n, total)
                next_progress = n + every
    finally:
        if gc_was_enabled:
            gc.enable()
            gc.collect()
    if progress is not None:
        progress(n, total)
    return FoldResult(rows, last, n, time.perf_counter() - t0, bad)


@dataclass
class VerifyResult:
    last_seq: int
    running_hash: str
    problems: list[str]
    #: The running hash at the sequence an earlier checkpoint named (None if not reached).
    hash_at_checkpoint: str | None = None


GENESIS = "0" * 64


async def verify_log(evlog: EventLog, checkpoint_seq: int | None = None) -> VerifyResult:
    """Walk the log: contiguous sequences, every event decodes, bytes are canonical JSON.

    The running hash is h_n = sha256(h_{n-1} || seq || sha256(bytes_n)): a change to any event
    up to a written-down checkpoint, a reorder or a gap changes the hash at that checkpoint.
    """
    h = GENESIS
    prev = 0
    problems: list[str] = []
    at_checkpoint: str | None = None
    async for msg in evlog.raw_replay():
        seq = ack_position(msg)[0]
        if seq != prev + 1:
            problems.append(f"gap: sequence {prev} is followed by {seq}")
        prev = seq
        data = msg.data
        try:
            raw = json.loads(data)
            if canonical_json(raw) != data:
                problems.append(f"seq {seq}: bytes are not canonical JSON")
            evlog.decode(msg)
        except (ValueError, EventDecodeError) as exc:
            problems.append(f"seq {seq}: {str(exc)[:200]}")
        h = hashlib.sha256(f"{h}\n{seq}\n{hashlib.sha256(data).hexdigest()}".encode()).hexdigest()
        if checkpoint_seq is not None and seq == checkpoint_seq:
            at_checkpoint = h
    return VerifyResult(prev, h, problems, at_checkpoint)
