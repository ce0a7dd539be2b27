"""The accountability service: the read model, and the events it records on it.

The projection folds the whole log (its own events included) into SQL with exactly-once
checkpoints. After each applied batch and on every clock tick, ``decide`` runs on a snapshot of
that model and its events are appended; they come back through the log and strike out the
obligations that caused them. Deterministic ids make a repeated decision a no-op.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncGenerator, Sequence
from datetime import date, datetime, timedelta
from itertools import islice
from typing import Any, cast

import nats.js.errors
from nats.aio.msg import Msg

from gongkai import subjects
from gongkai.calendar import local_date
from gongkai.consumer import cancel_until_done, keep_heap
from gongkai.decider import Decided, record
from gongkai.directory import Directory, DirectoryProjection
from gongkai.eventlog import EventIntegrityError, EventLog, RecordedEvent, ack_position
from gongkai.events import EventDecodeError, new_event
from gongkai.events.contracts.accountability import (
    FindingConfirmed,
    FindingReported,
    FindingResolved,
    IntegrityAlert,
    LogCheckpoint,
    SupervisionClosed,
    SupervisionIssued,
    ViolationRecorded,
    ViolationRectified,
)
from gongkai.runtime.service import Service, ServiceContext
from gongkai_accountability.adapters.checkpoints import (
    Chain,
    Checkpointer,
    CheckpointSettings,
    load_chain,
)
from gongkai_accountability.adapters.days import READ, TAKEN, Days
from gongkai_accountability.adapters.log import (
    ReadCounts,
    VerifyResult,
    fold_log,
    verified_events,
    verify_log,
)
from gongkai_accountability.adapters.sql import (
    DECIDES_ON,
    PAGE_SIZE,
    AccountabilityProjection,
    ReadModel,
)
from gongkai_accountability.adapters.trail import Links, post_rows
from gongkai_accountability.domain.decide import ACCOUNTABILITY, Policy, decisions
from gongkai_accountability.domain.report import score_points, unit_reports
from gongkai_accountability.domain.rows import MemoryRows, Rows
from gongkai_accountability.domain.tables import ALERT, POST, Post


def _short(value: Any, n: int) -> str | None:
    return value[:n] if isinstance(value, str) else None


#: Kept days of at least this many events are frozen out of the cyclic collector's sight
#: (``keep_heap``): a full collection over them cost a console request 120-180 ms at
#: 1,000,000 events; below this it is a few milliseconds, and tests never reach it.
KEEP_HEAP_EVENTS = 100_000


def policy_from_env() -> Policy:
    after = os.environ.get("GONGKAI_SUPERVISION_NOTICE_AFTER_DAYS", "2")
    return Policy(
        notice_after_days=None if after.lower() in ("", "never", "off") else int(after),
        deadline_days=int(os.environ.get("GONGKAI_SUPERVISION_DEADLINE_DAYS", "5")),
    )


#: Decisions made, signed and appended at a time by a tick (``decide.decisions``).
RECORD_BATCH = 500

#: How many (day, log length) folds ``as_of`` keeps.
AS_OF_KEPT = 8
#: How many (period start, day) score samples ``score_trend`` keeps (a year of weeks, a few
#: periods).
SCORES_KEPT = 1024


class AccountabilityService(Service):
    name = "accountability"
    description = (
        "Chain of custody of every post, supervision of stale columns, the office's findings, "
        "and violations recorded against the people responsible."
    )
    owns = (
        ViolationRecorded,
        ViolationRectified,
        SupervisionIssued,
        SupervisionClosed,
        FindingReported,
        FindingResolved,
        FindingConfirmed,
        IntegrityAlert,
        LogCheckpoint,
    )
    db_page_size = PAGE_SIZE

    def __init__(self, ctx: ServiceContext, policy: Policy, tick_seconds: float = 30.0) -> None:
        super().__init__(ctx)
        self.policy = policy
        self.tick_seconds = tick_seconds
        self.projection = AccountabilityProjection()
        self.add_projection(self.projection)
        self.directory_projection = DirectoryProjection()
        self.add_projection(self.directory_projection)
        self._model: ReadModel | None = None
        self._directory: Directory | None = None
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._ticker: asyncio.Task[None] | None = None
        self._stopping = False
        #: ``decide`` is a function of the tables it reads and of the day: after a batch that
        #: wrote none of them, on the same day, with nothing failed to record, it would decide
        #: what it decided last time (recorded, or a duplicate for the log to refuse). The
        #: batches' wakes then skip it: under load it read and decoded every open case and
        #: obligation after each batch, half of accountability's CPU (bench/profiles/README.md).
        self._decide_again = True
        self._decided_day: date | None = None
        self.checkpoint_settings = CheckpointSettings.from_env()
        #: Signs a checkpoint of the whole log every N events or M minutes (None: no key).
        self.checkpointer: Checkpointer | None = None
        self._as_of: dict[tuple[date, int], Rows] = {}
        self._first: date | None = None
        #: The log holds imported history (days before its first event): set once seen.
        self._history = False
        #: Every day's read model for the views, from one pass over the log (``as_of``).
        self.days = Days()
        self._days_ready = asyncio.Event()
        self._days_task: asyncio.Task[None] | None = None
        #: The projection's position when this service began to follow what it applies:
        #: the pass reads the log up to there, the projection feeds it the rest. A catch-up
        #: from sequence 1 reads and decodes the log once, not once for the projection and
        #: again for the pass (a tenth of accountability's CPU while catching up).
        self._days_from = 0
        #: The last stream sequence the projection applied while the pass still read the
        #: log: the pass reads on from the log up to it before it takes what the projection
        #: applies. (Holding those events instead held hundreds of thousands of envelopes
        #: during a catch-up from sequence 1: 1.2 GB at 1,000,000 events.)
        self._days_applied = 0
        #: The pass is where the projection is: what it applies is fed to the pass at once.
        self._days_live = False
        #: (period start, day, days.version) -> each unit's score: the overview's trend.
        self._scores: dict[tuple[date, date, int], dict[str, int]] = {}
        #: The last ``audit verify`` run (by log length), and one run at a time.
        self._verified: VerifyResult | None = None
        self._verify_lock = asyncio.Lock()
        #: The checkpoints as last read for the integrity page, without their tiles: the
        #: next read checks only the notes recorded since (the days' pass reads them first).
        self._shown_chain: Chain | None = None

    async def _first_day(self) -> date:
        """The day (Asia/Shanghai) before which nothing was recorded, a day's slack for clocks:
        the first event's, read once (the log only grows at its end). Once the log holds
        imported history, any day may have an answer."""
        if self._first is None:
            msg = await self.evlog.js.get_msg(self.evlog.stream, 1)
            recorded = datetime.fromisoformat(json.loads(msg.data or b"{}")["recorded_at"])
            self._first = local_date(recorded) - timedelta(days=1)
        if not self._history:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await self.evlog.js.get_msg(
                    self.evlog.stream,
                    1,
                    subject=subjects.type_filter("PublicationImported"),
                    next=True,
                )
                self._history = True
        return date.min if self._history else self._first

    async def as_of(self, day: date) -> Rows:
        """The log folded up to the end of ``day`` (Asia/Shanghai), as ``audit as-of`` folds it.

        Kept for the last few (day, log length) asked: the console and the HTTP routes ask the
        same day again and again, and a log that grew is folded afresh, never answered stale.
        """
        if self._days_task is not None:
            await self._days_ready.wait()
            kept = self.days.rows(day)
            if kept is not None:
                return kept
        last = await self.evlog.last_sequence()
        if last == 0 or day < await self._first_day():
            # Before the log's first event nothing had happened: no fold to tell that.
            return MemoryRows()
        key = (day, last)
        rows = self._as_of.get(key)
        if rows is None:
            rows = (await fold_log(self.evlog, until=day)).rows
            if len(self._as_of) >= AS_OF_KEPT:
                self._as_of.pop(next(iter(self._as_of)))
            self._as_of[key] = rows
        return rows

    async def score_trend(
        self, start: date, end: date
    ) -> tuple[tuple[date, ...], dict[str, list[int | None]]]:
        """Each unit's compliance score at ``report.score_points`` of [start, end], each point
        as ``as_of`` answers that day (None: the unit not yet known). A kept day's scores are
        remembered: they change only with the kept days' ``version``."""
        points = score_points(start, end)
        series: dict[str, list[int | None]] = {}
        for i, point in enumerate(points):
            key = (start, point, self.days.version)
            scores = self._scores.get(key)
            if scores is None:
                rows = await self.as_of(point)
                scores = {r.unit: r.score for r in unit_reports(rows, start, point)}
                if self._days_task is not None and point < self.days.current:
                    if len(self._scores) >= SCORES_KEPT:
                        self._scores.pop(next(iter(self._scores)))
                    self._scores[key] = scores
            for unit, score in scores.items():
                series.setdefault(unit, [None] * len(points))[i] = score
        return points, series

    async def post(self, post_id: str, day: date | None = None) -> Post | None:
        """A post's row: as the read model holds it now, or as of the end of ``day``
        (Shanghai) read by subject (``adapters.trail``), the read model naming the other
        aggregates it is made of; never a fold of the whole log."""
        live = await asyncio.to_thread(self.model.get, POST, post_id)
        if live is None or day is None or day >= local_date(self.ctx.clock.now()):
            return live
        sub = next((s for s in self.subscriptions if s.projection is self.projection), None)
        links = Links.of(live, sub.position if sub is not None else 0)
        rows = await post_rows(self.evlog, post_id, links, until=day)
        return rows.get(POST, post_id)

    async def verify(self) -> VerifyResult:
        """What ``gongkai audit verify`` reports, for the log as it is now: the Merkle tree
        recomputed from every event and every signed checkpoint held against it.

        It reads and hashes the whole log, so it runs in a thread of its own on its own
        connection (the service goes on answering meanwhile), one run at a time, and a log
        that has not grown since the last run gets that run's answer.
        """
        async with self._verify_lock:
            last = await self.evlog.last_sequence()
            if self._verified is None or self._verified.last_seq != last:
                self._verified = await asyncio.to_thread(asyncio.run, self._verify_apart())
            return self._verified

    async def _verify_apart(self) -> VerifyResult:
        evlog = await EventLog.connect(
            self.ctx.nats_url,
            keys=self.evlog.keys,
            name=f"gongkai-{self.name}-verify",
            **self.nats_auth().options(),
        )
        try:
            return await verify_log(evlog)
        finally:
            await evlog.close()

    async def connect(self) -> EventLog:
        evlog = await super().connect()
        evlog.on_integrity = self.integrity_failed
        return evlog

    async def integrity_failed(self, exc: EventIntegrityError, data: bytes) -> None:
        """An event some consumer of ours refused on a trust check: record it for inspectors.

        Once per stream sequence (the command id fixes the event id, and the alert's aggregate
        is new: expected 0), however many of our projections met it.
        """
        claimed: dict[str, Any] = {}
        with contextlib.suppress(ValueError):
            raw = json.loads(data)
            if isinstance(raw, dict):
                claimed = raw
        alert = IntegrityAlert(
            sequence=exc.seq,
            subject=exc.subject[:600],
            check=exc.check,  # type: ignore[arg-type]
            detail=exc.detail[:1000],
            claimed_event_id=_short(claimed.get("event_id"), 64),
            claimed_type=_short(claimed.get("type"), 128),
        )
        env = new_event(
            alert,
            aggregate_id=f"seq-{exc.seq}",
            actor=ACCOUNTABILITY,
            command_id=f"integrity:{exc.seq}",
            recorded_at=self.ctx.clock.now(),
        )
        await self.record([Decided(env, 0)])
        self.log.warning(
            "integrity_alert", sequence=exc.seq, check=exc.check, subject=exc.subject[:200]
        )

    @property
    def model(self) -> ReadModel:
        if self._model is None:
            self._model = ReadModel(self.engine, self.projection)
        return self._model

    @property
    def directory(self) -> Directory:
        if self._directory is None:
            self._directory = self.open_directory(self.directory_projection)
        return self._directory

    async def start(self) -> None:
        await super().start()
        for sub in self.subscriptions:
            if sub.projection is self.projection:
                # No await between reading the position and the hook: whatever it applies
                # after this position reaches ``_applied``.
                self._days_from = sub.position
                sub.on_applied = self._applied
        # The kept days take what the projection's fold writes instead of folding again.
        self.projection.note(TAKEN)
        self._stopping = False
        keys = self.evlog.keys
        if keys is not None and "accountability" in keys.private:
            self.checkpointer = Checkpointer(
                self.evlog,
                keys.private["accountability"],
                settings=self.checkpoint_settings,
                rejected=self._rejected,
                clock=self.ctx.clock,
            )
        self._ticker = asyncio.create_task(self._tick_loop(), name="accountability:tick")
        self._days_task = asyncio.create_task(self._read_days(), name="accountability:days")

    async def _read_days(self) -> None:
        """The pass behind ``days``: the log up to where the projection stood when this service
        started (``_days_from``), verified as ``fold_log`` reads it, then on from there up to
        what the projection applied meanwhile, then what the projection applies
        (``_applied``). The days answer once the projection has caught up with the log."""
        try:
            if self._days_from > 0:
                await self._read_days_upto(self._days_from)
            read = self.days.position
            while self._days_applied > read:
                read = await self._read_days_after(read, self._days_applied)
            # No await from the check above to here: whatever the projection applies from
            # now on reaches ``_applied``, which feeds it to the pass.
            self._days_live = True
            sub = next((s for s in self.subscriptions if s.projection is self.projection), None)
            if sub is not None:
                # Every batch is fed before the subscription says it has caught up.
                await sub.caught_up.wait()
            self._days_ready.set()
            self.log.info("days_read", events=self.days.events, position=self.days.position)
            if self.days.events >= KEEP_HEAP_EVENTS:
                keep_heap()
        except Exception as exc:  # noqa: BLE001 - the views fold the log per day instead
            self._days_failed(exc)
        finally:
            self._days_ready.set()

    async def _read_days_upto(self, upto: int) -> None:
        """Feed the pass the log's events up to sequence ``upto``, verified against the signed
        checkpoints (one hash an event) and, after them, by each one's signature."""
        chain = await load_chain(self.evlog) if self.evlog.keys is not None else None
        if chain is not None:
            if self._shown_chain is None:
                self._shown_chain = chain.without_tiles()
            # The pass checks events against what the checkpoints vouch for (``expected``),
            # not the checkpoints: their tiles would be held twice (32 bytes an event).
            chain.checkpoints.clear()
            chain.verified.clear()
        counts = ReadCounts()
        read = cast(
            AsyncGenerator[list[tuple[int, Any]], None],
            verified_events(self.evlog, READ, counts, chain),
        )
        async with contextlib.aclosing(read) as batches:  # the reader process ends with it
            async for batch in batches:
                for seq, env in batch:
                    if seq > upto:
                        break
                    self.days.feed(seq, env)
                if counts.last >= upto:
                    break
                await asyncio.sleep(0)  # pages go on answering between batches
        # Up to ``upto`` everything was read: what is not fed was not the pass's to fold.
        self.days.position = max(self.days.position, min(upto, counts.last))

    async def checkpoints(self) -> Chain | None:
        """The log's checkpoints as the integrity page shows them (None: the log is not
        signed), each note's signature checked once: read on from the last read."""
        if self.evlog.keys is None:
            return None
        chain = await load_chain(self.evlog, after=self._shown_chain, keep_tiles=False)
        self._shown_chain = chain
        return chain

    async def _read_days_after(self, after: int, upto: int) -> int:
        """Feed the pass what the log holds after ``after`` up to ``upto`` (each event's
        signature checked, as the pass checks what no checkpoint covers yet); the last
        sequence read."""
        last = after
        read = cast(AsyncGenerator[Msg, None], self.evlog.raw_replay(from_seq=after + 1))
        async with contextlib.aclosing(read) as msgs:
            async for msg in msgs:
                last = ack_position(msg)[0]
                if msg.subject.rsplit(".", 1)[-1] in READ:
                    try:
                        rec = self.evlog.decode(msg)
                    except EventDecodeError:
                        pass  # refused by a trust check: never folded, as the pass skips it
                    else:
                        self.days.feed(rec.seq, rec.envelope)
                if last >= upto:
                    break
        return last

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._ticker is not None:
            # The loop sees the flag at its next turn; cancel only a tick that overruns.
            try:
                await asyncio.wait_for(asyncio.shield(self._ticker), 10)
            except TimeoutError:
                await cancel_until_done(self._ticker)
        if self._days_task is not None and not self._days_task.done():
            await cancel_until_done(self._days_task)
        await super().stop()

    async def _applied(self, events: Sequence[RecordedEvent]) -> None:
        # Called once the batch is committed: a snapshot taken after this sees what it wrote.
        if not self.projection.touched.isdisjoint(DECIDES_ON):
            self._decide_again = True
        self.projection.touched.clear()
        if self.checkpointer is not None:
            # Every event, in order: hashed from here, not read from the log again.
            self.checkpointer.take(events)
        self._wake.set()
        # Taken whatever follows: they are this batch's (the next one's start after this).
        notes = self.projection.take_notes()
        if self._days_task is None:
            return
        if not self._days_live:
            if events:
                self._days_applied = max(self._days_applied, events[-1].seq)
            return
        try:
            for rec in events:
                changes = notes.get(rec.seq)
                if changes is not None:
                    self.days.take(rec.seq, rec.envelope, changes)
                else:
                    # Not applied by the fold (an event it refused, dead-lettered): folded
                    # here as before the kept days took the projection's writes.
                    self.days.feed(rec.seq, rec.envelope)
        except Exception as exc:  # noqa: BLE001 - never the projection's failure
            self._days_failed(exc)

    def _days_failed(self, exc: Exception) -> None:
        """The kept days are given up (each day is folded from the log per request again)."""
        self.log.warning("days_failed", error=repr(exc)[:300])
        self._days_task = None
        self.projection.note(frozenset())

    async def _tick_loop(self) -> None:
        # A stop flag, not cancellation: Python 3.11's wait_for can swallow a cancellation that
        # lands as its inner wait completes, and the loop would then never end.
        while not self._stopping:
            timed_out = False
            try:
                async with asyncio.timeout(self.tick_seconds):
                    await self._wake.wait()
            except TimeoutError:
                timed_out = True
            self._wake.clear()
            if self._stopping:
                return
            try:
                # The clock's tick always decides; a batch's wake only if it could change the
                # decisions (``_decide_again``), else it only checkpoints.
                await self.tick(decide=timed_out or self._decisions_may_change())
            except Exception as exc:  # noqa: BLE001 - the next tick decides again
                self.log.warning("tick_failed", error=str(exc)[:300])

    def _decisions_may_change(self) -> bool:
        return self._decide_again or local_date(self.ctx.clock.now()) != self._decided_day

    def caught_up(self) -> bool:
        return all(s.caught_up.is_set() for s in self.subscriptions)

    async def tick(self, *, decide: bool = True) -> int:
        """Decide on the read model as it stands and append, then checkpoint; returns events
        recorded. ``decide=False`` only checkpoints: the decisions would be last time's.

        Only once the projection has read the whole log: deciding on a model that has not yet
        seen its own earlier events would only produce duplicates for the log to refuse.
        """
        if not self.started or not self.caught_up():
            return 0
        async with self._lock:
            if not decide:
                await self.checkpoint()
                return 0
            now = self.ctx.clock.now()
            # Before the snapshot: a batch committed after this point wakes the loop again.
            self._decide_again, self._decided_day = False, local_date(now)
            try:
                snap = await asyncio.to_thread(self.model.snapshot)
                owed = decisions(snap, local_date(now), now, self.ctx.calendar, self.policy)
                n = 0
                # In bounded batches: after a catch-up from nothing a million-event log owes
                # tens of thousands of events, and holding them all (envelopes, then their
                # outcomes) while each was signed and appended took accountability to 450 MB.
                while batch := list(islice(owed, RECORD_BATCH)):
                    n += await self.record(batch)
                del snap
            except BaseException:
                self._decide_again = True  # not decided to the end: the next wake decides
                raise
            await self.checkpoint()
            return n

    def _rejected(self, first: int, last: int) -> list[int]:
        """Sequences in first..last that failed a signature check (never applied by anyone).

        Authority alerts are not among them: the fold reads those events and refuses what
        they claim by itself, on every path.
        """
        return sorted(
            a.sequence
            for a in self.model.list(ALERT)
            if first <= a.sequence <= last and a.check != "authority"
        )

    async def checkpoint(self, *, force: bool = False) -> int:
        """Append the signed checkpoints that are due; returns how many.

        Up to what the projection has applied once it has read the log as it stands when
        asked (a forced checkpoint covers the whole log as it was then, even an event this
        service appended a moment before), and only once the alerts for everything up to there
        are folded (they are appended before the projection moves past the event they refuse,
        so waiting again for the log's end as of then is enough): the checkpoint lists every
        rejected sequence of its range. ``force``: one now, if the log grew.
        """
        cp = self.checkpointer
        sub = next((s for s in self.subscriptions if s.projection is self.projection), None)
        if cp is None or sub is None:
            return 0
        if not force and not cp.due(sub.position):
            return 0
        await sub.wait_for(await self.evlog.last_sequence())
        upto = sub.position
        await sub.wait_for(await self.evlog.last_sequence())
        n = await cp.run(upto, force=force)
        if cp.warning:
            self.log.warning("checkpoint_restart", detail=cp.warning)
            cp.warning = None
        return n

    async def record(self, decisions: Sequence[Decided]) -> int:
        """Append through the runner; returns how many were new. A failed one is only logged:
        the next tick decides it again from the same read model."""
        n = 0
        for r in await record(self.evlog, decisions):
            d = r.decision
            if r.outcome == "failed":
                self._decide_again = True  # decided again at the next wake, not next tick
                self.log.warning("append_failed", event_id=d.event.event_id, error=r.error)
            elif r.outcome == "recorded":
                n += 1
                self.log.info(
                    "recorded",
                    event_type=d.event.type,
                    event_id=d.event.event_id,
                    correlation_id=d.event.correlation_id,
                    aggregate_id=d.event.aggregate_id,
                )
        return n

    async def settle(self, within: float = 10.0) -> None:
        """Tick until nothing more is decided (tests and the demo)."""
        for _ in range(20):
            await self.wait_caught_up(within=within)
            if await self.tick() == 0:
                return
        raise RuntimeError("accountability did not settle")
