"""Signed checkpoints of the log: ``Checkpointer`` writes them, ``load_chain`` reads them back.

Accountability hashes every event of the stream in order (not only what its projection folds:
the tree covers other services' events and the checkpoints themselves) and, every ``every``
events or ``minutes`` minutes if the log grew, appends a ``LogCheckpoint``: the Merkle root of
events 1..size in a C2SP signed note, the leaf hashes of the events since the previous
checkpoint (its tile) and the sequences among them that failed a trust check.

Where hashing starts after a restart: the last checkpoint carries the tree's compact range
(``frontier``, one hash per set bit of its size), checked against its signed root, so a start
reads one message and hashes only what came after it; rehashing a million events from the
beginning would take seconds at every start. A last checkpoint that does not verify is not
trusted: the frontier is then rebuilt from the whole log.

What the service's own projection reads (every event, in order) is handed over (``take``) and
hashed from there instead of read from the log a second time; whatever it did not hand over (an
event it refused, anything before the last checkpoint after a restart) is read from the log.
The leaves are the same bytes either way, hashed in the same order, at the same boundaries.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import nats.js.errors
from nats.js.api import RawStreamMsg

from gongkai import subjects
from gongkai.decider import Decided, record
from gongkai.eventlog import EventLog, EventLogError, RecordedEvent, ack_position
from gongkai.events import Actor, EventDecodeError, new_event
from gongkai.events.contracts.accountability import CHECKPOINT_MAX_TILE, LogCheckpoint
from gongkai.runtime.clock import Clock, SystemClock
from gongkai.trust.checkpoint import (
    NoteError,
    checkpoint_text,
    digest_b64,
    origin_of,
    rejected_text,
    sign_note,
    verify_checkpoint,
)
from gongkai.trust.keys import ServiceKey, TrustStore
from gongkai.trust.merkle import Frontier

CHECKPOINT_FILTER = subjects.type_filter("LogCheckpoint", "checkpoint")
ACTOR = Actor(person="accountability", role="system", unit="county-office")
#: Events handed over by the projection (``Checkpointer.take``) and held until a run hashes
#: them, at most: a run comes once ``every`` (1,000) events were applied, so more held means
#: runs are failing or the projection reads far ahead in large batches; the log has the rest.
TAKEN_MAX = 4096


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


@dataclass(frozen=True)
class CheckpointSettings:
    #: A checkpoint once this many events were appended since the last one (at most
    #: CHECKPOINT_MAX_TILE: its tile must fit in one message) ...
    every: int = 1000
    #: ... or this many minutes after the last one, if anything but checkpoints was appended.
    minutes: float = 10.0

    @classmethod
    def from_env(cls) -> CheckpointSettings:
        every = int(os.environ.get("GONGKAI_CHECKPOINT_EVERY", "1000"))
        minutes = float(os.environ.get("GONGKAI_CHECKPOINT_MINUTES", "10"))
        return cls(max(1, min(every, CHECKPOINT_MAX_TILE)), minutes)


class Checkpointer:
    """Hashes the log as it grows and appends a signed checkpoint every N events or M minutes.

    ``rejected(first, last)``: the sequences in that range that failed a trust check (the read
    model's integrity alerts). The caller makes sure those alerts are in before asking for a
    checkpoint up to ``last`` (see AccountabilityService.checkpoint).
    """

    def __init__(
        self,
        evlog: EventLog,
        key: ServiceKey,
        *,
        settings: CheckpointSettings | None = None,
        rejected: Callable[[int, int], Sequence[int]] = lambda first, last: (),
        clock: Clock | None = None,
    ) -> None:
        self.evlog = evlog
        self.key = key
        self.settings = settings or CheckpointSettings()
        self.rejected = rejected
        self.clock = clock or SystemClock()
        self.origin = origin_of(evlog.stream)
        #: The tree over every event hashed so far; None until ``load``.
        self.frontier: Frontier | None = None
        #: Leaf hashes of the events after the last checkpoint, packed.
        self.pending = bytearray()
        #: Whether anything but our own checkpoints is among them.
        self.grew = False
        self.last_size = 0
        self._last_at = time.monotonic()
        self.appended = 0
        #: Why the last checkpoint in the log was not continued from, if it was not.
        self.warning: str | None = None
        #: Events the projection read, in order from the tree's next (``take``): (sequence,
        #: subject, stored bytes).
        self._taken: deque[tuple[int, str, bytes]] = deque()
        #: Events hashed from what was handed over, and read from the log to be hashed.
        self.taken = 0
        self.read_back = 0
        #: One run at a time: a run awaits its reads and appends, and a second one meanwhile
        #: (the service's tick beside a direct ``AccountabilityService.checkpoint``) would hash
        #: the same events into the same tree again, or append at a size not yet settled.
        self._running = asyncio.Lock()

    @property
    def hashed(self) -> int:
        return self.frontier.size if self.frontier is not None else 0

    async def load(self) -> None:
        """Continue from the last checkpoint in the log (or hash the log from its start)."""
        self.frontier, self.pending, self.grew, self.last_size = Frontier(), bytearray(), False, 0
        self._taken.clear()
        msg = await self._last_checkpoint()
        if msg is None:
            return
        try:
            env = self.evlog.registry.decode(
                msg.data or b"", msg.headers, subject_type="LogCheckpoint"
            )
            p: LogCheckpoint = env.payload
            trust = self.evlog.keys.trust if self.evlog.keys else TrustStore()
            g = verify_checkpoint(p.note, trust, self.origin)
            frontier = Frontier(p.size, [base64.b64decode(h) for h in p.frontier])
            if g.checkpoint.size != p.size or frontier.root() != g.checkpoint.root:
                raise NoteError("the frontier does not lead to the signed root")
        except (EventDecodeError, NoteError, ValueError) as exc:
            # Not ours, or not what we signed: rebuild the tree from the log rather than
            # continue from it. `gongkai audit verify` names what is wrong.
            self.frontier = Frontier()
            self.last_size = 0
            self.warning = f"last checkpoint not trusted ({str(exc)[:200]}): hashing from the start"
            return
        self.frontier = frontier
        self.last_size = p.size

    async def _last_checkpoint(self) -> RawStreamMsg | None:
        try:
            return await self.evlog.js.get_last_msg(self.evlog.stream, CHECKPOINT_FILTER)
        except nats.js.errors.NotFoundError:
            return None

    def due(self, upto: int) -> bool:
        """Whether a run up to ``upto`` may append a checkpoint (else it need not read)."""
        if self.frontier is None:
            return True
        if upto - self.last_size >= self.settings.every:
            return True
        elapsed = time.monotonic() - self._last_at >= self.settings.minutes * 60
        return elapsed and (upto > self.hashed or self.grew)

    def take(self, events: Sequence[RecordedEvent]) -> None:
        """Events the service's projection read (a batch, in order), kept for the next ``run``
        to hash instead of reading them from the log again. What is kept is one run of
        consecutive sequences: after a gap (an event the projection refused) it starts again
        from the event after it, and ``run`` reads from the log whatever it lacks."""
        if self.frontier is None:
            return
        taken = self._taken
        for rec in events:
            if taken and (rec.seq != taken[-1][0] + 1 or len(taken) >= TAKEN_MAX):
                taken.clear()
            taken.append((rec.seq, rec.subject, rec.data))

    async def run(self, upto: int, *, force: bool = False) -> int:
        """Hash the log up to sequence ``upto``, appending the checkpoints that fall due.

        ``force``: a checkpoint at ``upto`` now if the log grew (tests, the demo).
        """
        async with self._running:
            return await self._run(upto, force=force)

    async def _run(self, upto: int, *, force: bool) -> int:
        if self.frontier is None:
            await self.load()
        assert self.frontier is not None
        before = self.appended
        taken = self._taken
        while self.hashed < upto:
            while taken and taken[0][0] <= self.hashed:
                taken.popleft()  # hashed from the log already
            if taken and taken[0][0] == self.hashed + 1:
                _, subject, data = taken.popleft()
                self.taken += 1
                await self._hash(subject, data)
                continue
            # From the log: up to ``upto``, or to where what was handed over begins.
            stop = min(upto, taken[0][0] - 1) if taken else upto
            start = self.hashed
            async for msg in self.evlog.raw_replay(from_seq=self.hashed + 1):
                seq = ack_position(msg)[0]
                if seq != self.frontier.size + 1:
                    raise EventLogError(
                        f"checkpoint: sequence {self.frontier.size + 1} is missing (next is {seq})"
                    )
                self.read_back += 1
                await self._hash(msg.subject, msg.data)
                if seq >= stop:
                    break
            if self.hashed == start:
                break  # the log ended first (as a read of it did before): the next run goes on
        elapsed = time.monotonic() - self._last_at >= self.settings.minutes * 60
        if self.grew and (force or elapsed) and self.frontier.size > self.last_size:
            await self._append()
        return self.appended - before

    async def _hash(self, subject: str, data: bytes) -> None:
        """The tree's next leaf; the checkpoint it completes, if one is due there."""
        assert self.frontier is not None
        leaf = _leaf(data)
        self.frontier.append(leaf)
        self.pending += leaf
        if not subject.endswith(".LogCheckpoint"):
            self.grew = True
        if self.frontier.size - self.last_size >= self.settings.every:
            await self._append()

    async def _append(self) -> None:
        assert self.frontier is not None
        size, first = self.frontier.size, self.last_size + 1
        tile = bytes(self.pending)
        rejected = sorted(s for s in self.rejected(first, size) if first <= s <= size)
        root = self.frontier.root()
        now = self.clock.now()
        text = checkpoint_text(
            self.origin, size, root, at=now, first=first, tile=tile, rejected=rejected
        )
        note = sign_note(text, self.key)
        payload = LogCheckpoint(
            size=size,
            root=_b64(root),
            first=first,
            tile=_b64(tile),
            rejected=tuple(rejected),
            frontier=tuple(_b64(h) for h in self.frontier.hashes),
            note=note,
        )
        env = new_event(
            payload,
            aggregate_id=f"size-{size}",
            actor=ACTOR,
            command_id=f"checkpoint:{size}",
            recorded_at=now,
        )
        # Expected 0: one checkpoint per size; if another instance wrote this one, it stands.
        [done] = await record(self.evlog, [Decided(env, 0)])
        if done.outcome == "failed":
            # Nothing moves on: the next run hashes nothing again and retries this size.
            raise EventLogError(done.error or "checkpoint not appended")
        if done.outcome == "recorded":
            self.appended += 1
        self.last_size = size
        self.pending = bytearray()
        self.grew = False
        self._last_at = time.monotonic()


# ---- reading checkpoints back ------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedCheckpoint:
    seq: int
    size: int
    first: int
    root: bytes
    at: datetime
    note: str
    tile: bytes = field(repr=False)
    rejected: tuple[int, ...]


@dataclass
class Chain:
    """The log's checkpoints whose signatures hold, and what they vouch for.

    ``covered``: events 1..covered are vouched for by a contiguous run of tiles (``expected``,
    their packed leaf hashes); ``rejected``: the sequences among them the checkpoints list as
    failed trust checks. ``problems``: checkpoints that did not verify or break the run.
    """

    checkpoints: list[VerifiedCheckpoint] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)
    covered: int = 0
    expected: bytearray = field(default_factory=bytearray)
    rejected: set[int] = field(default_factory=set)
    notes_checked: int = 0
    #: What was read, for reading on from it (``load_chain(after=...)``): the checkpoints whose
    #: notes verified, the notes that did not, and the last stream sequence read.
    verified: list[VerifiedCheckpoint] = field(default_factory=list)
    unreadable: list[tuple[int, str]] = field(default_factory=list)
    read_to: int = 0
    trust: TrustStore | None = None

    @property
    def latest(self) -> VerifiedCheckpoint | None:
        return max(self.checkpoints, key=lambda c: c.size) if self.checkpoints else None

    def by_size(self, size: int) -> VerifiedCheckpoint | None:
        return next((c for c in self.checkpoints if c.size == size), None)

    def without_tiles(self) -> Chain:
        """The same chain for showing (``load_chain(keep_tiles=False)``): no tiles, no
        ``expected``."""
        bare = {id(c): replace(c, tile=b"") for c in self.verified}
        return replace(
            self,
            checkpoints=[bare.get(id(c)) or replace(c, tile=b"") for c in self.checkpoints],
            verified=list(bare.values()),
            expected=bytearray(),
            problems=list(self.problems),
            rejected=set(self.rejected),
            unreadable=list(self.unreadable),
        )


def check_payload(p: LogCheckpoint, trust: TrustStore, origin: str, seq: int) -> VerifiedCheckpoint:
    """The checkpoint of one LogCheckpoint event, if its note verifies and matches its payload."""
    g = verify_checkpoint(p.note, trust, origin)
    cp = g.checkpoint
    tile = base64.b64decode(p.tile, validate=True)
    if cp.size != p.size or _b64(cp.root) != p.root or g.first != p.first:
        raise NoteError("the event's size, root or first sequence is not what the note signs")
    if len(tile) != 32 * (p.size - p.first + 1) or digest_b64(tile) != g.tile_digest:
        raise NoteError("the tile is not the one the note signs")
    if len(p.rejected) != g.rejected_count or digest_b64(rejected_text(p.rejected)) != (
        g.rejected_digest
    ):
        raise NoteError("the rejected sequences are not the ones the note signs")
    return VerifiedCheckpoint(seq, p.size, p.first, cp.root, g.at, p.note, tile, p.rejected)


async def load_chain(
    evlog: EventLog,
    trust: TrustStore | None = None,
    *,
    after: Chain | None = None,
    keep_tiles: bool = True,
) -> Chain:
    """Read every checkpoint of the log, check each note's signature once, chain the tiles.

    One signature per checkpoint (not per event); the events' own signatures are not needed:
    the note signs everything this uses. ``after``: a chain read earlier against the same
    trust anchors; only the checkpoints recorded since are read and checked (the console's
    integrity page asks on every request: a thousand notes took a second to check again).

    ``keep_tiles=False``: for showing the checkpoints, not for checking events against them.
    Each tile is checked against its note as it is read and then dropped (32 bytes an event:
    32 MB at a million events), so ``expected`` stays empty; ``covered``, ``rejected`` and
    ``problems`` are what they would be with the tiles. A chain read without tiles is read on
    from only without them.
    """
    trust = trust or (evlog.keys.trust if evlog.keys else TrustStore())
    if after is not None and after.trust is not trust:
        after = None  # other anchors (rotated, reloaded): every note is checked again
    origin = origin_of(evlog.stream)
    chain = Chain(trust=trust)
    found: list[VerifiedCheckpoint] = list(after.verified) if after else []
    chain.unreadable = list(after.unreadable) if after else []
    chain.read_to = after.read_to if after else 0
    chain.notes_checked = after.notes_checked if after else 0
    async for msg in evlog.raw_replay(from_seq=chain.read_to + 1, filter_subject=CHECKPOINT_FILTER):
        seq = ack_position(msg)[0]
        chain.read_to = max(chain.read_to, seq)
        chain.notes_checked += 1
        try:
            env = evlog.registry.decode(msg.data, msg.headers, subject_type="LogCheckpoint")
            cp = check_payload(env.payload, trust, origin, seq)
            found.append(cp if keep_tiles else replace(cp, tile=b""))
        except (EventDecodeError, NoteError, ValueError) as exc:
            chain.unreadable.append(
                (seq, f"checkpoint at sequence {seq} does not verify: {exc}")
            )
    chain.verified = found
    chain.problems = list(chain.unreadable)
    for cp in sorted(found, key=lambda c: c.size):
        chain.checkpoints.append(cp)
        if cp.size <= chain.covered:
            continue  # within what earlier checkpoints vouch for (verify compares the roots)
        if cp.first != chain.covered + 1:
            chain.problems.append(
                (cp.seq, f"checkpoint size-{cp.size} starts at {cp.first}, not {chain.covered + 1}")
            )
            continue
        if keep_tiles:
            chain.expected += cp.tile
        chain.rejected.update(cp.rejected)
        chain.covered = cp.size
    return chain
