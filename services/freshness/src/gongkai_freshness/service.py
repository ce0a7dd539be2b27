"""The freshness service as the host runs it: the register, its ticks, the columns' gauges.

The service follows the log into the register, records transitions and ticks. State lives in
memory (``adapters.register``), rebuilt at start by replaying the log in order, own events
included, so the ledger of what was already recorded is as durable as the log itself. Once
caught up, each relevant event is folded in and its columns re-decided; a clock tick re-decides
everything when the day changes. Every transition has a deterministic event id, and the
register folds it in as soon as its append is acknowledged, so nothing is recorded twice.
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
from gongkai.consumer import cancel_until_done, dead_letter
from gongkai.decider import handle
from gongkai.directory import Directory, DirectoryProjection
from gongkai.eventlog import ack_position
from gongkai.events import Actor, Envelope, EventDecodeError
from gongkai.events.contracts.freshness import (
    ColumnDueSoon,
    ColumnHidden,
    ColumnKept,
    ColumnRefreshed,
    ColumnStale,
    ColumnWasStale,
    column_aggregate_id,
)
from gongkai.rules import Catalog, RuleSet
from gongkai.runtime.clock import Clock
from gongkai.runtime.idempotency import IdempotencyStore
from gongkai.runtime.idempotency import metadata as idempotency_tables
from gongkai.runtime.service import Service, ServiceContext
from gongkai_freshness.adapters.config import FreshnessConfig
from gongkai_freshness.adapters.log import record_transitions
from gongkai_freshness.adapters.register import ColumnRegister
from gongkai_freshness.domain.evaluation import Transition
from gongkai_freshness.domain.register import RELEVANT_TYPES
from gongkai_freshness.domain.report import Attachment2, ColumnStatus, SiteRisk
from gongkai_freshness.domain.state import ColumnKey, ColumnState
from gongkai_freshness.domain.visibility import VISIBILITY, SetVisibility, Tick


@dataclass(frozen=True)
class VisibilityResult:
    """What a unit's tick of ✓/× did (``set_visibility``'s answer to the route)."""

    changed: bool
    event_id: str | None
    #: The column after the tick and the transitions it caused.
    column: ColumnState


#: Re-decide touched columns at least this often while a backlog is being read.
_FLUSH_EVERY = 500
#: A tick waits until no imported item has arrived for this long (an import in progress).
HISTORY_QUIET_SECONDS = 5.0

COLUMNS = Gauge(
    "gongkai_freshness_columns",
    "Unit columns by state under each rule set, as of the last daily evaluation",
    ["rule_set", "state"],
)
UNIT_COLUMNS = Gauge(
    "gongkai_freshness_unit_columns",
    "One unit's columns by state under each rule set (stale, blank, ...), as of the last "
    "daily evaluation",
    ["rule_set", "unit", "state"],
)
PAST_VETO = Gauge(
    "gongkai_freshness_units_past_veto_line",
    "Units whose own columns are at or past a single-veto line of a rule set's site lines "
    "(stale columns >= 5, blank columns >= 5, homepage idle 2 weeks ...), as of the last daily "
    "evaluation",
    ["rule_set", "line"],
)


class FreshnessService(Service):
    # The register follows the log itself (``_follow``), skipping every other type unread.
    also_consumes = RELEVANT_TYPES
    name = "freshness"
    description = (
        "Column deadlines from Attachment 2 and the national lines: due soon, stale, refreshed; "
        "each unit's keep/hide choices."
    )
    owns = (ColumnDueSoon, ColumnStale, ColumnRefreshed, ColumnHidden, ColumnKept, ColumnWasStale)

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
        #: Columns touched since the last flush, in the order first touched.
        self._touched: dict[ColumnKey, None] = {}
        self._cause: Envelope[Any] | None = None
        self._retry = False
        #: When the last imported item was folded in (monotonic seconds).
        self._history_at = float("-inf")
        self._evaluated_on: date | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._subscription: list[Any] = []

    # ---- ports used by the routes (entrypoints.http.Ports) -----------------------------

    @property
    def directory(self) -> Directory:
        if self._directory is None:
            self._directory = self.open_directory(self.directory_projection)
        return self._directory

    @property
    def idempotency(self) -> IdempotencyStore:
        # Made on first use, after start: building the service must not touch the database.
        if self._idempotency is None:
            self._idempotency = IdempotencyStore(self.engine)
        return self._idempotency

    @property
    def clock(self) -> Clock:
        return self.ctx.clock

    @property
    def rule_sets(self) -> tuple[RuleSet, ...]:
        return self.register.rule_sets

    @property
    def catalog(self) -> Catalog:
        return self.register.book.catalog

    def today(self) -> date:
        return today(self.ctx.clock.now())

    def has_unit(self, code: str) -> bool:
        return self.register.has_unit(code)

    def joined_on(self, code: str) -> date | None:
        return self.register.joined_on(code)

    def status_table(
        self, as_of: date, *, unit: str | None = None, rule_set: str | None = None
    ) -> list[ColumnStatus]:
        return self.register.status_table(as_of, unit=unit, rule_set=rule_set)

    def site_risk(self, rs: RuleSet, as_of: date, *, unit: str | None = None) -> SiteRisk:
        return self.register.site_risk(rs, as_of, unit=unit)

    def attachment2(self, unit: str) -> Attachment2:
        return self.register.attachment2(unit)

    # ---- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        await super().start()
        self._tasks = [
            asyncio.create_task(self._follow(), name="freshness:follow"),
            asyncio.create_task(self._ticker(), name="freshness:tick"),
        ]

    async def stop(self) -> None:
        await asyncio.gather(*(cancel_until_done(task) for task in self._tasks))
        self._tasks = []
        # Unread messages of a cancelled reader would make the connection's drain wait for
        # them until its timeout: drop the subscription first.
        for sub in self._subscription:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subscription = []
        await super().stop()

    async def readiness_reasons(self) -> list[str]:
        # The register follows the whole log outside the projection machinery.
        return [] if self.caught_up.is_set() else ["freshness register catching up"]

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
            # From the reply subject: nats-py's metadata object per message cost more than
            # skipping an event the register does not read.
            seq, _, pending = ack_position(msg)
            if msg.subject.rpartition(".")[2] in RELEVANT_TYPES:
                await self._fold(msg, seq)
            self._folded = seq
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
                touched = self.register.fold(env, seq)
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
            if env.type == "PublicationImported":
                # History arrives as a batch: deciding a column on half of it, as of today,
                # would record it stale and then refreshed. The next tick decides every column
                # on the whole of what arrived (``tick``: not while the batch still streams in).
                self._retry = True
                self._history_at = time.monotonic()
            elif self.caught_up.is_set():
                self._touched.update(dict.fromkeys(touched))
                self._cause = env

    async def _flush(self) -> None:
        keys, cause = list(self._touched), self._cause
        self._touched, self._cause = {}, None
        await self._record(self.register.decide(keys, self.today()), cause)

    async def _caught_up(self) -> None:
        if self.caught_up.is_set():
            return
        self.caught_up.set()
        state = self.register.state
        self.log.info(
            "caught_up",
            position=self.position,
            units=len(state.units),
            columns=state.column_count(),
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

    def _unit_figures(self, as_of: date, per_unit: dict[tuple[str, str, str], int]) -> None:
        """Each unit's columns by state, and how many units are past each veto line."""
        UNIT_COLUMNS.clear()  # a unit gone from the register leaves no stale series behind
        for rs in self.register.rule_sets:
            for unit in self.register.units():
                for state in ("fresh", "due_soon", "stale", "hidden", "blank"):
                    UNIT_COLUMNS.labels(rule_set=rs.id, unit=unit, state=state).set(
                        per_unit.get((rs.id, unit, state), 0)
                    )
            past = dict.fromkeys((line.id for line in rs.site), 0)
            for unit in self.register.units():
                risk = self.register.site_risk(rs, as_of, unit=unit)
                for line in risk.lines:
                    if line.level == "veto":
                        past[line.id] += 1
            for line_id, n in past.items():
                PAST_VETO.labels(rule_set=rs.id, line=line_id).set(n)

    async def tick(self, *, force: bool = False) -> int:
        """Decide every column as of today; returns the number of events recorded.

        Deadlines move only with the date, so without ``force`` a tick on a day already
        evaluated (and with nothing left to retry) does nothing.
        """
        as_of = self.today()
        if not force and as_of == self._evaluated_on and not self._retry:
            return 0
        if not force and time.monotonic() - self._history_at < HISTORY_QUIET_SECONDS:
            return 0  # an import is still streaming in; ``_retry`` stays set
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
            per_unit: dict[tuple[str, str, str], int] = {}
            for row in self.register.status_table(as_of):
                counts[(row.rule_set, row.state)] += 1
                key = (row.rule_set, row.unit, row.state)
                per_unit[key] = per_unit.get(key, 0) + 1
            for (rule_set, state), value in counts.items():
                COLUMNS.labels(rule_set=rule_set, state=state).set(value)
            self._unit_figures(as_of, per_unit)
        self.log.info(
            "evaluated",
            as_of=as_of.isoformat(),
            columns=self.register.state.column_count(),
            decide_ms=round(decided * 1000, 1),
            recorded=n,
        )
        return n

    # ---- recording ---------------------------------------------------------------------

    async def _record(self, transitions: Sequence[Transition], cause: Envelope[Any] | None) -> int:
        """Append transitions in order; fold each in as soon as it is acknowledged."""
        if not transitions:
            return 0
        outcomes = await record_transitions(
            self.evlog, transitions, self.ctx.clock.now(), cause
        )
        recorded = 0
        failed: list[str] = []
        for out in outcomes:
            env = out.decision.event
            if out.outcome == "failed":
                # Left undecided in the register: the next tick decides it again.
                failed.append(out.error or "")
                continue
            if out.outcome != "recorded":
                continue  # already in the log, ahead of us: folded in when read
            self.register.fold(env, out.seq or 0)
            self._echo.add(env.event_id)
            recorded += 1
            self.log.debug(
                "recorded",
                type=env.type,
                event_id=env.event_id,
                correlation_id=env.correlation_id,
                unit=env.payload.unit,
                column=env.payload.column,
            )
        if failed:
            self._retry = True
            self.log.warning("record_failed", events=len(failed), error=failed[0][:300])
        return recorded

    # ---- commands ----------------------------------------------------------------------

    async def set_visibility(self, cmd: SetVisibility, actor: Actor) -> VisibilityResult:
        """Record a unit's ✓/× for a column (raises ``Refusal``)."""
        async with self._lock:
            state = self.register.state
            version = state.column(cmd.unit, cmd.column).version
            choice = "kept" if cmd.keep else "hidden"
            h = await handle(
                self.evlog,
                VISIBILITY,
                column_aggregate_id(cmd.unit, cmd.column),
                Tick(cmd, state.units.get(cmd.unit), state.catalog),
                command_id=f"visibility:{cmd.unit}:{cmd.column}:{version}:{choice}",
                actor=actor,
                now=self.ctx.clock.now,
            )
            if not h.events:
                return VisibilityResult(False, None, state.column(cmd.unit, cmd.column))
            env = h.events[0]
            if not h.replayed:
                self.register.fold(env, h.sequences[-1])
                self._echo.add(env.event_id)
            self.log.info(
                "visibility_decided",
                unit=cmd.unit,
                column=cmd.column,
                choice=choice,
                event_id=env.event_id,
                correlation_id=env.correlation_id,
                person=actor.person,
            )
            await self._record(self.register.decide([(cmd.unit, cmd.column)], self.today()), env)
            col = self.register.state.column(cmd.unit, cmd.column)
            return VisibilityResult(True, env.event_id, col)

