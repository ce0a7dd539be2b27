"""Reading the log straight into the fold: rebuilds, as-of queries, verify."""

from __future__ import annotations

import base64
import contextlib
import gc
import json
import time
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from gongkai.eventlog import EventLog, ack_position
from gongkai.events import Envelope, EventDecodeError, canonical_json
from gongkai.masking import masked_event
from gongkai.prefetch import prefetched
from gongkai.trust.keys import IntegrityError
from gongkai.trust.merkle import (
    Frontier,
    LeafHashes,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_of,
)
from gongkai_accountability.adapters.checkpoints import Chain, VerifiedCheckpoint, load_chain
from gongkai_accountability.domain.fold import RELEVANT, as_of_day, evolve
from gongkai_accountability.domain.rows import MemoryRows


@dataclass
class FoldResult:
    rows: MemoryRows
    last_seq: int
    events: int
    seconds: float
    undecodable: int = 0
    #: Events not folded because they failed verification (a leaf hash that differs from its
    #: signed checkpoint's tile, a sequence a checkpoint lists as rejected, or, after the last
    #: checkpoint, a signature that does not hold).
    rejected: int = 0
    #: Events vouched for by signed checkpoints (one hash each), and checked one signature at
    #: a time after the last of them; None: no trust anchors, nothing verified.
    by_checkpoint: int | None = None
    by_signature: int = 0

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


@dataclass
class ReadCounts:
    seen: int = 0
    last: int = 0
    bad: int = 0
    rejected: int = 0
    by_signature: int = 0


async def verified_events(
    evlog: EventLog,
    types: Collection[str],
    counts: ReadCounts,
    chain: Chain | None,
) -> AsyncIterator[list[tuple[int, Envelope[Any]]]]:
    """The log's events of ``types`` in order, in batches, each verified before it is decoded.

    Events 1..``chain.covered`` are checked against the signed checkpoints: the reader hashes
    every message (in its own process on a large log) and each batch's packed leaf hashes are
    compared with the checkpoints' tiles at once; a sequence a checkpoint lists as rejected is
    skipped. After the last checkpoint each event's own signature is checked. Without a chain
    (no trust anchors) nothing is verified.
    """
    decode = evlog.registry.decode
    covered = chain.covered if chain is not None else 0
    expected = chain.expected if chain is not None else b""
    rejected = chain.rejected if chain is not None else set()
    trust = evlog.keys.trust if evlog.keys is not None else None
    verify = chain is not None and trust is not None
    signed_from = covered + 1 if verify else None
    async for batch in prefetched(
        evlog, types, total=None, hashes=verify and covered > 0, signed_from=signed_from
    ):
        first = counts.seen + 1
        counts.seen, counts.last = batch.seen, batch.last_seq
        bad: set[int] = set()
        if verify and first <= covered:
            if batch.last_seq != batch.seen:
                # Sequences and tree positions no longer agree (a gap): nothing from here on
                # is vouched for by a tile; every event's signature is checked instead.
                covered = 0
                signed_from = first
            else:
                upto = min(covered, batch.seen)
                want = expected[32 * (first - 1) : 32 * upto]
                got = batch.leaves[: 32 * (upto - first + 1)]
                if want != got:
                    bad = {
                        first + i
                        for i in range(upto - first + 1)
                        if want[32 * i : 32 * i + 32] != got[32 * i : 32 * i + 32]
                    }
        out: list[tuple[int, Envelope[Any]]] = []
        for seq, etype, data in batch.events:
            try:
                if not verify:
                    env = decode(data, subject_type=etype)
                elif seq <= covered:
                    if seq in bad or seq in rejected:
                        counts.rejected += 1
                        continue
                    env = decode(data, subject_type=etype)
                else:
                    assert trust is not None
                    subject, headers = batch.headers.get(seq, ("", {}))
                    try:
                        key = trust.check(subject, data, headers, etype)
                        env = decode(data, headers, subject_type=etype)
                        trust.check_retired(key, env.recorded_at, etype)
                    except IntegrityError:
                        counts.rejected += 1
                        continue
                    counts.by_signature += 1
            except EventDecodeError:
                counts.bad += 1  # the live projection dead-letters it; verify reports it
                continue
            out.append((seq, env))
        yield out


async def fold_log(
    evlog: EventLog,
    *,
    until: date | None = None,
    progress: Callable[[int, int], None] | None = None,
    every: int = 20000,
    freeze: bool = False,
) -> FoldResult:
    """Fold the whole log (or what was recorded up to the end of ``until``, Shanghai, and the
    imported history of days up to it: ``fold.as_of_day``) in order.

    Events the fold does not read are skipped before decoding: the subject names the type.
    Every event is verified before it is folded (``verified_events``): the signed checkpoints
    are read first, one signature each, then each event is one hash against them.

    ``freeze``: for a process that writes the rows and ends (``gongkai audit rebuild``). The
    cyclic collector is off while the fold runs, and everything the fold built is then moved
    out of its sight (``gc.freeze``) instead of collected: that one collection walks every
    object of the rows (0.3-0.7 s of a 100,000-event rebuild, about 5-9 %) to find some tens
    of objects in cycles, which a process about to end may as well keep. A long-lived process
    (the service's as-of days) collects the young generations only (``gc.collect(1)``): the
    collector was off for the whole fold, so everything it made is still young, and the cycles
    it left are found there without walking the rest of the process's heap again (a full
    collection in a test process that had imported the services and run part of the suite took
    0.3-0.7 s each: 52 of them, 23 s of make test). The survivors join the oldest generation,
    and Python's own full collection sees them in its time.
    """
    rows = MemoryRows()
    total = await evlog.last_sequence()
    t0 = time.perf_counter()
    chain = await load_chain(evlog) if evlog.keys is not None else None
    counts = ReadCounts()
    next_progress = every
    # The fold builds a few hundred thousand long-lived, acyclic rows; the cyclic collector
    # would rescan them again and again (a sixth of a million-event rebuild). It is off for
    # the fold only, and whatever garbage the fold left is collected right after.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        async for batch in verified_events(evlog, RELEVANT, counts, chain):
            for seq, env in batch:
                if until is not None and as_of_day(env) > until:
                    continue
                evolve(rows, masked_event(env), seq)  # as the live projection folds it
            if progress is not None and counts.seen >= next_progress:
                progress(counts.seen, total)
                next_progress = counts.seen + every
    finally:
        if gc_was_enabled:
            if freeze:
                gc.freeze()
            gc.enable()
            if not freeze:
                gc.collect(1)
    if progress is not None:
        progress(counts.seen, total)
    return FoldResult(
        rows,
        counts.last,
        counts.seen,
        time.perf_counter() - t0,
        counts.bad,
        counts.rejected,
        min(chain.covered, counts.seen) if chain is not None else None,
        counts.by_signature,
    )


@dataclass
class VerifyResult:
    last_seq: int
    #: The Merkle root of the whole log as it is now (RFC 9162, base64).
    root: str
    #: (sequence, what is wrong), in sequence order.
    problems: list[tuple[int, str]]
    checkpoints: int = 0
    #: Events 1..covered are vouched for by signed checkpoints.
    covered: int = 0
    #: Events after the last checkpoint whose own signature was checked.
    signed: int = 0
    #: Sequences the checkpoints list as having failed a trust check (never applied).
    rejected: list[int] = field(default_factory=list)

    @property
    def first_difference(self) -> int | None:
        return min((s for s, _ in self.problems), default=None)


async def verify_log(evlog: EventLog) -> VerifyResult:
    """Recompute the Merkle tree from the log and hold every signed checkpoint against it.

    Each checkpoint's note must be signed by a trusted accountability key; each event's leaf
    hash must equal the one in its checkpoint's tile (which names the first sequence that
    differs: an altered, dropped, inserted or reordered event) and the root at each
    checkpoint's size the signed one (a checkpoint beyond the end of the log: a truncated log).
    After the last checkpoint each event's own signature is checked. Every event must decode,
    its bytes canonical JSON, and sequences run without a gap.
    """
    chain = await load_chain(evlog)
    problems: list[tuple[int, str]] = list(chain.problems)
    sizes: dict[int, list[VerifiedCheckpoint]] = {}
    for cp in chain.checkpoints:
        sizes.setdefault(cp.size, []).append(cp)
    expected = chain.expected
    covered = chain.covered
    frontier = Frontier()
    signed = 0
    tile_off = False
    async for msg in evlog.raw_replay():
        seq = ack_position(msg)[0]
        pos = frontier.size + 1
        if seq != pos and not tile_off:
            problems.append((pos, f"sequence {pos} is missing: the log goes on at {seq}"))
            tile_off = True
        data = msg.data
        leaf = leaf_hash(data)
        frontier.append(leaf)
        if pos <= covered:
            if leaf != expected[32 * (pos - 1) : 32 * pos]:
                cp = next(c for c in chain.checkpoints if c.first <= pos <= c.size)
                problems.append(
                    (pos, f"sequence {pos} differs from what checkpoint size-{cp.size} signed")
                )
            try:
                raw = json.loads(data)
                if canonical_json(raw) != data:
                    problems.append((seq, f"sequence {seq}: bytes are not canonical JSON"))
                evlog.decode(msg, verify=False)
            except (ValueError, EventDecodeError) as exc:
                if pos not in chain.rejected:
                    problems.append((seq, f"sequence {seq}: {str(exc)[:200]}"))
        else:
            try:
                evlog.decode(msg)
                signed += 1
            except EventDecodeError as exc:
                problems.append((seq, f"sequence {seq}: {str(exc)[:200]}"))
        for cp in sizes.get(pos, ()):
            if frontier.root() != cp.root:
                problems.append(
                    (pos, f"the root at size {pos} is not what checkpoint size-{pos} signed")
                )
    for size in sorted(sizes):
        if size > frontier.size:
            problems.append(
                (frontier.size + 1, f"the log ends at {frontier.size}; checkpoint size-{size} "
                 "signed a longer one")
            )
            break
    problems.sort(key=lambda p: p[0])
    return VerifyResult(
        frontier.size,
        base64.b64encode(frontier.root()).decode(),
        problems,
        len(chain.checkpoints),
        min(covered, frontier.size),
        signed,
        sorted(chain.rejected),
    )


class ProveError(Exception):
    """No proof can be given (nothing checkpointed yet, an unknown event or size)."""


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


async def _leaves(evlog: EventLog, size: int, event_id: str | None = None
                  ) -> tuple[LeafHashes, tuple[int, bytes] | None]:
    """Leaf hashes of events 1..size, and (sequence, bytes) of ``event_id`` among them."""
    leaves = LeafHashes()
    found: tuple[int, bytes] | None = None
    needle = f'"event_id":"{event_id}"'.encode() if event_id else None
    if size == 0:
        return leaves, None
    async for msg in evlog.raw_replay():
        seq = ack_position(msg)[0]
        if seq != len(leaves) + 1:
            raise ProveError(f"sequence {len(leaves) + 1} is missing: run gongkai audit verify")
        leaves.append(leaf_hash(msg.data))
        if needle is not None and found is None and needle in msg.data:
            with contextlib.suppress(ValueError):
                if json.loads(msg.data).get("event_id") == event_id:
                    found = (seq, msg.data)
        if seq >= size:
            break
    if len(leaves) < size:
        raise ProveError(f"the log ends at {len(leaves)}, before size {size}")
    return leaves, found


def _checked_root(leaves: LeafHashes, cp: VerifiedCheckpoint) -> None:
    if root_of(leaves, 0, cp.size) != cp.root:
        raise ProveError(
            f"the log is not what checkpoint size-{cp.size} signed: run gongkai audit verify"
        )


async def prove_inclusion(evlog: EventLog, event_id: str) -> dict[str, Any]:
    """An inclusion proof of ``event_id`` against the latest signed checkpoint."""
    chain = await load_chain(evlog)
    cp = chain.latest
    if cp is None:
        raise ProveError("the log has no signed checkpoint yet")
    leaves, found = await _leaves(evlog, cp.size, event_id)
    if found is None:
        raise ProveError(
            f"no event {event_id} among the {cp.size:,} events the latest checkpoint covers"
        )
    _checked_root(leaves, cp)
    seq, data = found
    try:
        path = inclusion_proof(leaves, seq - 1, cp.size)
    except ProofError as exc:
        raise ProveError(str(exc)) from None
    return {
        "type": "inclusion",
        "checkpoint": cp.note,
        "tree_size": cp.size,
        "leaf_index": seq - 1,
        "sequence": seq,
        "event_id": event_id,
        "event": _b64(data),
        "leaf_hash": _b64(leaves[seq - 1]),
        "proof": [_b64(h) for h in path],
    }


async def prove_consistency(evlog: EventLog, old: int, new: int | None = None) -> dict[str, Any]:
    """A consistency proof between two signed checkpoints (``new``: the latest)."""
    chain = await load_chain(evlog)
    new_cp = chain.by_size(new) if new is not None else chain.latest
    old_cp = chain.by_size(old)
    if new_cp is None or old_cp is None:
        sizes = ", ".join(str(c.size) for c in sorted(chain.checkpoints, key=lambda c: c.size))
        missing = old if old_cp is None else new
        raise ProveError(f"no signed checkpoint of size {missing} (there are: {sizes or 'none'})")
    if old_cp.size > new_cp.size:
        raise ProveError(f"size {old_cp.size} is after {new_cp.size}")
    leaves, _ = await _leaves(evlog, new_cp.size)
    _checked_root(leaves, new_cp)
    _checked_root(leaves, old_cp)
    path = consistency_proof(leaves, old_cp.size, new_cp.size)
    return {
        "type": "consistency",
        "old": {"tree_size": old_cp.size, "checkpoint": old_cp.note},
        "new": {"tree_size": new_cp.size, "checkpoint": new_cp.note},
        "proof": [_b64(h) for h in path],
    }
