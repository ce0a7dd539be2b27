"""The freshness service: follows the log into the register, records transitions, ticks.

State lives in memory (``ColumnRegister``), rebuilt at start by replaying the log in order, own
events included, so the ledger of what was already recorded is as durable as the log itself.
Once caught up, each relevant event is folded in and its columns re-decided; a clock tick
re-decides everything when the day changes. Every transition has a deterministic event id, and
the register records it as soon as its append is acknowledged, so nothing is recorded twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from prometheus_client import Gauge

from gongkai import metrics
from gongkai.calendar import today
from gongkai.consumer import dead_letter
from gongkai.decider import handle
from gongkai.directory import Directory, DirectoryProjection
from gongkai.eventlog import EventLogError
from gongkai.events import Actor, Envelope, EventDecodeError, new_event
from gongkai.events.contracts.freshness import (
    ColumnDueSoon,
    ColumnHidden,
    ColumnKept,
    ColumnRefreshed,
    ColumnStale,
    column_aggregate_id,
)
from gongkai.runtime.idempotency import IdempotencyStore
from gongkai.runtime.idempotency import metadata as idempotency_tables
from gongkai.runtime.service import Service, ServiceContext
from gongkai_freshness.config import FreshnessConfig
from gongkai_freshness.domain.evaluation import Transition
from gongkai_freshness.domain.register import RELEVANT_TYPES, ColumnRegister
from gongkai_freshness.domain.report import status_table
from gongkai_freshness.domain.state import ColumnState
from gongkai_freshness.domain.visibility import VISIBILITY, SetVisibility, Tick

#: The author of every transition: freshness itself, not a person.
FRESHNESS_ACTOR = Actor(person="freshness", role="system", unit="system")
#: Re-decide touched columns at least this often while a backlog is being read.
_FLUSH_EVERY = 500

COLUMNS = Gauge(
    "gongkai_freshness_columns",
    "Unit columns by state under each rule set, as of the last daily evaluation",
    ["rule_set", "state"],
)


@dataclass(frozen=True)
class VisibilityResult:
    changed: bool
    event_id: str | None
    column: ColumnState


class FreshnessService(Service):
    name = "freshness"
    description = (
        "Column deadlines from Attachment 2 and the national lines: due soon, stale, refreshed; "
        "each unit's keep/hide choices."
    )
    owns = (ColumnDueSoon, ColumnStale, ColumnRefreshed, ColumnHidden, ColumnKept)

    def __init__(
        self, ctx: ServiceContext, register: ColumnRegister, config: FreshnessConfig
    ) -> None:
        super().__init__(ctx)
        self.register = register
        self.config = config
        self.directory_projection = DirectoryProjection()
        self.add_projection(self.directory_projection)
        self.add_tables(idempotency_tables)
        self._directory: Directory | None = None
        self._idempotency: IdempotencyStore | None = None
        #: Stream sequence up to which events are folded in and their columns decided.
        self.position = 0
        #: Stream sequence up to which events are folded in (decisions may be pending).
        self._folded = 0
        self.caught_up = asyncio.Event()
        self._lock = asyncio.Lock()
        self._echo: set[str] = set()
        self._touched: dict[tuple[str, str], ColumnState] = {}
        self._cause: Envelope[Any] | None = None
        self._retry = False
        self._evaluated_on: date | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._subscription: list[Any] = []

    @property
    def directory(self) -> Directory:
        if self._directory is None:
            self._directory = Directory(
                self.engine,
                self.directory_projection,
                clock=self.ctx.clock,
                log=self.projection_log(self.directory_projection),
            )
        return self._directory

    @property
    def idempotency(self) -> IdempotencyStore:
        # Made on first use, after start: building the service must not touch the database.
        if self._idempotency is None:
            self._idempotency = IdempotencyStore(self.engine)
        return self._idempotency

    def today(self) -> date:
        return today(self.ctx.clock.now())

    # ---- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        await super().start()
        self._tasks = [
            asyncio.create_task(self._follow(), name="freshness:follow"),
            asyncio.create_task(self._ticker(), name="freshness:tick"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        # Unread messages of a cancelled reader would make the connection's drain wait for
        # them until its timeout: drop the subscription first.
        for sub in self._subscription:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subscription = []
        await super().stop()

    async def ready(self) -> bool:
        return self.caught_up.is_set() and await super().ready()

    async def update_lag(self) -> None:
        await super().update_lag()
        if self._evlog is None:
            return
        # The register follows the whole log (no filter) outside the projection machinery:
        # its lag is the distance from the end of the log to what is folded in and decided.
        last = await self._evlog.last_sequence()
        metrics.CONSUMER_LAG.labels(consumer="freshness_register").set(
            max(0, last - self.position)
        )

    async def wait_caught_up(self, seq: int | None = None, within: float = 10.0) -> None:
        target = seq if seq is not None else await self.evlog.last_sequence()
        await super().wait_caught_up(target, within)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while self.position < target:
            if loop.time() > deadline:
                raise TimeoutError(f"freshness at {self.position}, wanted {target}")
            await asyncio.sleep(0.005)

    # ---- following the log -------------------------------------------------------------

    async def _follow(self) -> None:
        # A lost connection ends the ordered consumer; resume after the last folded event.
        while True:
            try:
                await self._read()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                self.log.warning("follow_restart", error=str(exc)[:300], position=self.position)
                await asyncio.sleep(0.5)

    async def _read(self) -> None:
        if await self.evlog.last_sequence() <= self._folded:
            await self._drain()
            await self._caught_up()
        self._subscription = []
        async for msg in self.evlog.raw_replay(
            from_seq=self._folded + 1, follow=True, subscription_out=self._subscription
        ):
            md = msg.metadata
            seq = md.sequence.stream
            if msg.subject.rpartition(".")[2] in RELEVANT_TYPES:
                await self._fold(msg, seq)
            self._folded = seq
            pending = md.num_pending
            if pending == 0 or len(self._touched) >= _FLUSH_EVERY:
                await self._drain()
            elif not self._touched:
                self.position = seq
            if pending == 0 and not self.caught_up.is_set():
                await self._caught_up()

    async def _drain(self) -> None:
        """Decide the columns touched since the last flush; then all folded is decided."""
        if self._touched:
            async with self._lock:
                await self._flush()
        self.position = self._folded

    async def _fold(self, msg: Any, seq: int) -> None:
        try:
            rec = self.evlog.decode(msg)
        except EventDecodeError as exc:
            await dead_letter(self.evlog, self.name, msg, str(exc), self.name)
            return
        env = rec.envelope
        if env.event_id in self._echo:
            # Our own append coming back: folded in when it was acknowledged.
            self._echo.discard(env.event_id)
            return
        async with self._lock:
            try:
                touched = self.register.evolve(env, seq)
            except Exception as exc:  # noqa: BLE001 - one bad event must not stop the others
                self.log.error(
                    "fold_failed",
                    event_id=env.event_id,
                    correlation_id=env.correlation_id,
                    seq=seq,
                    error=f"{type(exc).__name__}: {exc}"[:300],
                )
                await dead_letter(
                    self.evlog, self.name, msg, f"{type(exc).__name__}: {exc}", self.name
                )
                return
            if self.caught_up.is_set():
                for col in touched:
                    self._touched[(col.unit, col.column)] = col
                self._cause = env

    async def _flush(self) -> None:
        cols, cause = list(self._touched.values()), self._cause
        self._touched, self._cause = {}, None
        transitions = self.register.decide_columns(cols, self.today())
        await self._record(transitions, cause)

    async def _caught_up(self) -> None:
        if self.caught_up.is_set():
            return
        self.caught_up.set()
        self.log.info(
            "caught_up",
            position=self.position,
            units=len(self.register.units),
            columns=len(self.register.columns),
        )
        try:
            await self.tick(force=True)
        except Exception as exc:  # noqa: BLE001 - the ticker tries again
            self._retry = True
            self.log.warning("tick_failed", error=str(exc)[:300])

    # ---- the clock ---------------------------------------------------------------------

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.config.tick_seconds)
            if not self.caught_up.is_set():
                continue
            try:
                await self.tick()
            except Exception as exc:  # noqa: BLE001 - the next tick tries again
                self.log.warning("tick_failed", error=str(exc)[:300])

    async def tick(self, *, force: bool = False) -> int:
        """Decide every column as of today; returns the number of events recorded.

        Deadlines move only with the date, so without ``force`` a tick on a day already
        evaluated (and with nothing left to retry) does nothing.
        """
        as_of = self.today()
        if not force and as_of == self._evaluated_on and not self._retry:
            return 0
        async with self._lock:
            self._retry = False
            started = time.perf_counter()
            transitions = self.register.decide_all(as_of)
            decided = time.perf_counter() - started
            n = await self._record(transitions, None)
            self._evaluated_on = as_of
            counts: dict[tuple[str, str], int] = {
                (rs.id, st): 0
                for rs in self.register.rule_sets
                for st in ("fresh", "due_soon", "stale", "hidden", "blank")
            }
            for row in status_table(self.register, as_of):
                counts[(row.rule_set, row.state)] += 1
            for (rule_set, state), value in counts.items():
                COLUMNS.labels(rule_set=rule_set, state=state).set(value)
        self.log.info(
            "evaluated",
            as_of=as_of.isoformat(),
            columns=len(self.register.columns),
            decide_ms=round(decided * 1000, 1),
            recorded=n,
        )
        return n

    # ---- recording ---------------------------------------------------------------------

    async def _record(self, transitions: Sequence[Transition], cause: Envelope[Any] | None) -> int:
        """Append transitions in order; fold each in as soon as it is acknowledged."""
        if not transitions:
            return 0
        now = self.ctx.clock.now()
        envs = [
            new_event(
                t.payload,
                aggregate_id=t.aggregate_id,
                actor=FRESHNESS_ACTOR,
                command_id=t.command_id,
                recorded_at=now,
                correlation_id=cause.correlation_id if cause else None,
                causation_id=cause.event_id if cause else None,
            )
            for t in transitions
        ]
        try:
            results = await self.evlog.append_pipelined([(e, None) for e in envs])
        except Exception as exc:  # noqa: BLE001 - e.g. the connection closed mid-way
            # Nothing folded in: the register still owes these, and the next tick decides them.
            self._retry = True
            self.log.warning("record_failed", events=len(envs), error=str(exc)[:300])
            return 0
        recorded = 0
        for env, res in zip(envs, results, strict=True):
            if isinstance(res, EventLogError):
                # Left undecided in the register: the next tick decides it again.
                self._retry = True
                self.log.warning(
                    "record_failed", event_id=env.event_id, type=env.type, error=str(res)[:300]
                )
                continue
            if res.duplicate:
                continue  # already in the log, ahead of us: folded in when read
            self.register.evolve(env, res.last)
            self._echo.add(env.event_id)
            recorded += 1
            metrics.EVENTS_APPENDED.labels(service=self.name, type=env.type).inc()
            self.log.debug(
                "recorded",
                type=env.type,
                event_id=env.event_id,
                correlation_id=env.correlation_id,
                unit=env.payload.unit,
                column=env.payload.column,
            )
        return recorded

    # ---- commands ----------------------------------------------------------------------

    async def set_visibility(self, cmd: SetVisibility, actor: Actor) -> VisibilityResult:
        """Record a unit's ✓/× for a column (raises ``Refusal``)."""
        async with self._lock:
            reg = self.register
            existing = reg.columns.get((cmd.unit, cmd.column))
            choice = "kept" if cmd.keep else "hidden"
            version = existing.version if existing is not None else 0
            h = await handle(
                self.evlog,
                VISIBILITY,
                column_aggregate_id(cmd.unit, cmd.column),
                Tick(cmd, reg.units.get(cmd.unit), reg.catalog),
                command_id=f"visibility:{cmd.unit}:{cmd.column}:{version}:{choice}",
                actor=actor,
                now=self.ctx.clock.now,
            )
            col = reg.column(cmd.unit, cmd.column)
            if not h.events:
                return VisibilityResult(False, None, col)
            env = h.events[0]
            if not h.replayed:
                reg.evolve(env, h.sequences[-1])
                self._echo.add(env.event_id)
                metrics.EVENTS_APPENDED.labels(service=self.name, type=env.type).inc()
            self.log.info(
                "visibility_decided",
                unit=cmd.unit,
                column=cmd.column,
                choice=choice,
                event_id=env.event_id,
                correlation_id=env.correlation_id,
                person=actor.person,
            )
            await self._record(reg.decide_column(col, self.today()), env)
            return VisibilityResult(True, env.event_id, col)
