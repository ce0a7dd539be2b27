"""Consumers of the log: catch-up subscriptions for projections, durable consumers for reactions.

Projections need strict stream order *and* exactly-once effects. A JetStream durable consumer
redelivers a nacked message after newer ones, which would let a projection's checkpoint run past
it; so a projection reads through a *catch-up subscription*: an ordered consumer that starts at
the checkpoint stored in the projection's own database, retries a failing event a bounded number
of times in place, then dead-letters it with its error and goes on.

Only a fault of the *event* counts towards that bound. When the read-model database or the bus
is unavailable (``unavailable``: a lock held too long, a lost connection, a server restarting),
the consumer pauses and retries the same batch with a growing delay until it goes through:
dead-lettering there would drop good events from the read model for good.

Reactions whose effects are idempotent appends (deterministic event ids) and do not depend on
order use a *durable consumer*: JetStream pull consumer, explicit ack, nack with a delay on
error, ``max_deliver`` redeliveries, then the dead-letter subject.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import nats.errors
import nats.js.errors
import structlog
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from gongkai import metrics, subjects
from gongkai.eventlog import EventIntegrityError, EventLog, RecordedEvent, ack_position
from gongkai.events.envelope import EventDecodeError
from gongkai.projection import Projection, ProjectionStore, database_unavailable
from gongkai.runtime.progress import Progress

log = structlog.get_logger("gongkai.consumer")

#: Seconds between "catching_up" log lines while a projection replays its backlog.
CATCH_UP_LOG_EVERY = 10.0
#: Events applied per transaction while a projection is behind (a caught-up one applies what
#: has arrived). Each transaction costs a commit (5-15 ms on a busy disk) and the rows a batch
#: touches are read and written once (``Projection.begin``/``flush``): measured on a county's
#: log, accountability applied an event in 63 us at 500 a batch, 41 us at 2,000.
CATCH_UP_BATCH = 2000
#: Longest pause between two tries while the database or the bus is unavailable.
MAX_OUTAGE_DELAY_S = 2.0

_BUS_UNAVAILABLE: tuple[type[BaseException], ...] = (
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.NoServersError,
    nats.errors.NoRespondersError,
    nats.errors.StaleConnectionError,
    nats.errors.TimeoutError,
    nats.errors.OutboundBufferLimitError,
    nats.js.errors.ServiceUnavailableError,
    TimeoutError,
    ConnectionError,
)


#: The collector's young-generation threshold while a projection catches up (``_Heap``).
BEHIND_GEN0 = 100_000


class _Heap:
    """The cyclic collector while projections catch up: what a batch left alive is frozen.

    Catching up builds long-lived objects (rows, registers, kept days) batch after batch, and
    every full collection walked all of them again: measured on accountability over 100,000
    events, a fifth of its CPU (16.0 s with the collector off, 20.6 s with it on). A rebuild
    turns the collector off for its fold; a running service cannot (its other tasks go on),
    so after each batch applied while behind, what is alive is moved out of the collector's
    generations (``gc.freeze``), and young collections wait for ``BEHIND_GEN0`` new objects
    instead of 700, so a batch is frozen without being walked first. Reference counting
    still frees whatever dies; a cycle that dies while behind waits for a batch larger than
    that, or until a projection has caught up, when the frozen objects go back
    (``gc.unfreeze``), the thresholds are restored, and the next full collection sees them
    all once.
    """

    frozen = False
    #: The process holds a large state for as long as it runs (``keep_heap``): once caught
    #: up, the survivors are frozen again instead of walked by every full collection.
    kept = False
    #: The collector's thresholds from before the catch-up, given back once caught up.
    thresholds: tuple[int, int, int] | None = None

    @classmethod
    def behind(cls) -> None:
        gc.freeze()
        cls.frozen = True
        if cls.thresholds is None:
            # A young collection every 700 new objects walked each batch's envelopes once or
            # twice before the freeze took them (a decoded event is about a dozen tracked
            # objects): 3-4 µs of the ~15 an event costs to decode while behind. A batch's
            # worth (2,000 events and what applying them leaves) stays under this, so the
            # freeze after it takes the batch unwalked; a larger one is still collected.
            cls.thresholds = gc.get_threshold()
            gc.set_threshold(max(cls.thresholds[0], BEHIND_GEN0), *cls.thresholds[1:])

    @classmethod
    def caught_up(cls) -> None:
        if cls.thresholds is not None:
            gc.set_threshold(*cls.thresholds)
            cls.thresholds = None
        if cls.frozen:
            cls.frozen = False
            gc.unfreeze()
            if cls.kept:
                gc.collect()  # the cycles that died while frozen, once
                gc.freeze()


def keep_heap() -> None:
    """What is alive now lives as long as the process: out of the cyclic collector's sight.

    For a service that holds a large state in memory for good (accountability's kept days at a
    million events): every full collection walked all of it again, 120-180 ms that landed on
    whichever request was running (measured on the console at 1,000,000 events). Frozen, only
    what is made after is walked. Reference counting still frees what dies; a cycle among the
    frozen objects that dies later is collected only at the next catch-up (``_Heap``), which
    freezes the survivors again.
    """
    _Heap.kept = True
    if not _Heap.frozen:
        gc.freeze()


def unavailable(error: BaseException) -> bool:
    """True for an outage of the database or the bus: wait and retry, never dead-letter."""
    return database_unavailable(error) or isinstance(error, _BUS_UNAVAILABLE)


class Outage:
    """Backoff and logging for one stretch of retries while something is unavailable.

    Logs the start and the end once each (not every retry) and counts retries in
    ``gongkai_outage_retries_total``.
    """

    def __init__(self, consumer: str) -> None:
        self.consumer = consumer
        self.retries = 0
        self.started = 0.0

    async def wait(self, error: BaseException) -> None:
        loop = asyncio.get_running_loop()
        if self.retries == 0:
            self.started = loop.time()
            log.warning(
                "consumer_paused",
                consumer=self.consumer,
                reason=f"{type(error).__name__}: {error}"[:300],
            )
        self.retries += 1
        metrics.OUTAGE_RETRIES.labels(consumer=self.consumer).inc()
        await asyncio.sleep(min(MAX_OUTAGE_DELAY_S, 0.05 * 2 ** min(self.retries, 6)))

    def over(self) -> None:
        if self.retries:
            log.info(
                "consumer_resumed",
                consumer=self.consumer,
                retries=self.retries,
                paused_s=round(asyncio.get_running_loop().time() - self.started, 2),
            )
            self.retries = 0


async def cancel_until_done(task: asyncio.Task[Any], every: float = 1.0) -> None:
    """Cancel ``task`` and wait for it to end, cancelling again while it has not.

    In Python 3.11 a cancellation that lands while ``asyncio.wait_for`` (nats-py's fetch and
    request use it) sees its inner future finish is swallowed, and the task reads on: a stop
    that cancelled once and awaited the task waited forever (seen once, under load, in a
    platform's teardown). Cancelling again until it is done ends it.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=every)
    with contextlib.suppress(asyncio.CancelledError, Exception):
        task.result()


def event_log_context(rec: RecordedEvent) -> contextlib.AbstractContextManager[Any]:
    """Every log line while handling an event names the event and its correlation id."""
    env = rec.envelope
    return structlog.contextvars.bound_contextvars(
        event_id=env.event_id, correlation_id=env.correlation_id, seq=rec.seq
    )


async def dead_letter(
    evlog: EventLog, consumer: str, msg: Msg, error: str, owner: str | None = None
) -> None:
    """Record a message a consumer gave up on, with its error, in the dead-letter stream.

    ``owner`` is the service the consumer belongs to: several services have a projection of
    the same name (``directory``), and each one's dead letter must be kept.
    """
    md = None
    with contextlib.suppress(Exception):
        md = msg.metadata
    hdr = {
        "Gk-Dlq-Consumer": consumer,
        "Gk-Dlq-Service": owner or "",
        "Gk-Dlq-Error": error[:2000].replace("\n", " ").replace("\r", " "),
        "Gk-Dlq-Subject": msg.subject,
        "Gk-Dlq-Stream-Seq": str(md.sequence.stream) if md else "",
        "Gk-Dlq-Deliveries": str(md.num_delivered) if md else "",
    }
    if md is not None:
        # One dead letter per (consumer, sequence) even if we crash and do this twice.
        hdr["Nats-Msg-Id"] = f"dlq-{owner or ''}-{consumer}-{md.sequence.stream}"
    await evlog.js.publish(
        subjects.dlq_subject(consumer, owner), msg.data, stream=subjects.DLQ_STREAM, headers=hdr
    )
    metrics.DEAD_LETTERS.labels(consumer=consumer).inc()
    log.warning(
        "dead_lettered",
        consumer=consumer,
        seq=hdr["Gk-Dlq-Stream-Seq"],
        subject=msg.subject,
        error=hdr["Gk-Dlq-Error"][:300],
    )


async def refuse(
    evlog: EventLog, consumer: str, msg: Msg, exc: EventDecodeError, owner: str | None
) -> None:
    """An event a reader cannot believe or read: dead-lettered with the reason, never applied;
    a failed trust check is also handed to the log's ``on_integrity`` (accountability records
    it as an IntegrityAlert for inspectors)."""
    await dead_letter(evlog, consumer, msg, str(exc), owner)
    if isinstance(exc, EventIntegrityError) and evlog.on_integrity is not None:
        try:
            await evlog.on_integrity(exc, msg.data)
        except Exception as err:  # noqa: BLE001 - the dead letter holds it; retried on replay
            log.warning("integrity_alert_failed", consumer=consumer, error=str(err)[:300])


class _Reader:
    """What a projection's subscription and a durable consumer both hold: the log they read,
    the service they belong to (it names their dead letters), how many messages they take at
    a time, and the task that reads until told to stop."""

    def __init__(self, evlog: EventLog, *, batch: int, owner: str | None) -> None:
        self.evlog = evlog
        self.owner = owner
        self.batch = batch
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()


class CatchUpSubscription(_Reader):
    """Feeds one projection from its checkpoint onward, in stream order, exactly once."""

    def __init__(
        self,
        evlog: EventLog,
        store: ProjectionStore,
        projection: Projection,
        *,
        batch: int = CATCH_UP_BATCH,
        max_attempts: int = 5,
        retry_delay: float = 0.2,
        on_applied: Callable[[Sequence[RecordedEvent]], Awaitable[None]] | None = None,
        owner: str | None = None,
    ) -> None:
        super().__init__(evlog, batch=batch, owner=owner)
        self.store = store
        self.projection = projection
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self.on_applied = on_applied
        self.caught_up = asyncio.Event()
        self.progress = Progress()
        self._position = 0
        self._logged_at = time.monotonic()
        self._synced_to = 0
        self._holder: list[Any] = []
        #: The last sequence delivered, and how many matching messages the server said were
        #: still to come with it: what readiness knows of the lag without asking anyone.
        self.delivered = 0
        self.server_pending = 0
        #: Everything the server sent up to here is applied, or was passed over as not this
        #: projection's (``Projection.wanted``): the position stays at the last applied.
        self._read_to = 0

    def lag_hint(self) -> int:
        """More than 0 while this projection has something to apply, as far as it knows."""
        return self.server_pending + max(0, self.delivered - max(self.position, self._read_to))

    @property
    def name(self) -> str:
        return self.projection.name

    @property
    def position(self) -> int:
        """The last stream sequence this projection has applied (its committed checkpoint)."""
        return self._position

    @position.setter
    def position(self, value: int) -> None:
        if value != self._position:
            now = time.monotonic()
            self.progress.advanced(value, now)
            if not self.caught_up.is_set() and now - self._logged_at >= CATCH_UP_LOG_EVERY:
                # A restore behind a million events takes minutes: say how it is going.
                self._logged_at = now
                rate = self.progress.rate(now)
                log.info(
                    "catching_up", projection=self.name, position=value,
                    rate_per_second=None if rate is None else round(rate),
                )
        self._position = value

    async def start(self) -> None:
        self.position = await asyncio.to_thread(self.store.prepare, self.projection)
        self._task = asyncio.create_task(self._supervise(), name=f"catch-up:{self.name}")

    async def stop(self) -> None:
        """Finish the batch in hand, then stop; the checkpoint is always committed state."""
        self._stopping.set()
        if self._task is not None:
            await cancel_until_done(self._task)
        for sub in self._holder:
            # The replay's own cleanup may have been cut short by the cancellation.
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def wait_for(self, seq: int, within: float = 10.0) -> None:
        """Wait until the projection has seen everything up to stream sequence ``seq``.

        A filtered projection may never see ``seq`` itself; it has also seen it once its
        consumer has nothing pending and everything delivered is applied.
        """
        deadline = asyncio.get_running_loop().time() + within
        while max(self.position, self._read_to, self._synced_to) < seq:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{self.name} at {self.position}, wanted {seq}")
            await asyncio.sleep(0.005)
            await self.sync_state()

    async def sync_state(self) -> bool:
        """Ask the server whether this subscription has applied everything; True if so."""
        if not self._holder:
            return self.caught_up.is_set()
        try:
            last = await self.evlog.last_sequence()
            info = await self._holder[0].consumer_info()
        except Exception:  # noqa: BLE001 - a reconnect in progress: not known to be synced
            return False
        delivered = info.delivered.stream_seq if info.delivered else 0
        # A filtered consumer created where nothing after its start matches reports the
        # stream's last sequence as delivered although it delivered nothing (consumer_seq 0):
        # there is nothing to apply, so that too is caught up.
        nothing_delivered = info.delivered is None or info.delivered.consumer_seq == 0
        applied = max(self.position, self._read_to)
        if info.num_pending == 0 and (applied >= delivered or nothing_delivered):
            self._synced_to = max(self._synced_to, last)
            self.caught_up.set()
            return True
        return False

    async def _supervise(self) -> None:
        # A lost connection or a server restart ends the ordered consumer; start again from
        # the committed checkpoint, which is always safe.
        while not self._stopping.is_set():
            try:
                await self._run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                if self.evlog.nc.is_closed:
                    log.info("catch_up_closed", projection=self.name)
                    return
                log.warning("catch_up_restart", projection=self.name, error=str(exc)[:300])
                await asyncio.sleep(0.5)
                # The database may be what failed: an error here must not end the supervisor
                # (the projection would stop for good while the service looks alive).
                outage = Outage(self.name)
                while not self._stopping.is_set():
                    try:
                        self.position = await asyncio.to_thread(
                            self.store.checkpoint, self.projection
                        )
                        break
                    except Exception as again:  # noqa: BLE001
                        await outage.wait(again)
                outage.over()

    async def _run(self) -> None:
        start = self.position + 1
        last = await self.evlog.last_sequence()
        if last < start:
            self.caught_up.set()
            self._synced_to = last
        pending: list[tuple[Msg, RecordedEvent]] = []
        self._holder = []
        wanted = self.projection.wanted()
        async for msg in self.evlog.raw_replay(
            from_seq=start,
            filter_subject=self.projection.subjects(),
            follow=True,
            subscription_out=self._holder,
        ):
            seq, ns, left = ack_position(msg)  # once: decoding takes the position too
            if wanted is None or wanted(msg.subject):
                try:
                    rec = self.evlog.decode_at(msg, seq, ns)
                except EventDecodeError as exc:
                    await self._flush(pending)
                    pending = []
                    await refuse(self.evlog, self.name, msg, exc, self.owner)
                    await self._apply_waiting([], advance_to=seq)
                    self.position = seq
                    continue
                pending.append((msg, rec))
            elif not pending:
                # Not this projection's, with nothing before it waiting: passed over as the
                # server's own filter would have, neither decoded nor verified nor stored.
                self._read_to = seq
            self.delivered, self.server_pending = seq, left
            # Caught up, what has already arrived goes into the same transaction: the events
            # appended while the last batch was applied came one by one, each the log's last
            # when sent, and were a transaction each (accountability, 1.6 events a batch
            # under the chain's load, each batch a transaction, a thread hop and a wake).
            if len(pending) >= self.batch or (left == 0 and not self._arrived()):
                await self._flush(pending)
                pending = []
                self._read_to = seq
                if left:
                    _Heap.behind()
                else:
                    _Heap.caught_up()
                    self.caught_up.set()

    def _arrived(self) -> bool:
        """Whether more of the log is here already, read next without waiting."""
        return any(h.arrived() for h in self._holder)

    async def _flush(self, pending: list[tuple[Msg, RecordedEvent]]) -> None:
        if not pending:
            return
        events = [r for _, r in pending]
        outage = Outage(self.name)
        while True:
            try:
                n = await asyncio.to_thread(self.store.apply, self.projection, events)
                self._applied(events, n)
                break
            except Exception as exc:  # an outage waits, a bad event is isolated below
                if unavailable(exc):
                    if self._stopping.is_set():
                        raise  # leave the batch to the next start: the checkpoint is behind it
                    await outage.wait(exc)
                    continue
                outage.over()
                for msg, rec in pending:
                    await self._apply_one(msg, rec)
                break
        outage.over()
        if self.on_applied is not None:
            await self.on_applied(events)

    async def _apply_waiting(self, events: Sequence[RecordedEvent], *, advance_to: int) -> int:
        """``store.apply``, waiting out an outage of the database instead of failing."""
        outage = Outage(self.name)
        while True:
            try:
                n = await asyncio.to_thread(
                    self.store.apply, self.projection, events, advance_to=advance_to
                )
            except Exception as exc:
                if not unavailable(exc) or self._stopping.is_set():
                    raise
                await outage.wait(exc)
            else:
                outage.over()
                return n

    async def _apply_one(self, msg: Msg, rec: RecordedEvent) -> None:
        with event_log_context(rec):
            await self._apply_one_bound(msg, rec)

    async def _apply_one_bound(self, msg: Msg, rec: RecordedEvent) -> None:
        error = ""
        for attempt in range(1, self.max_attempts + 1):
            try:
                # An outage met here is waited out, not counted as a failed attempt.
                n = await self._apply_waiting([rec], advance_to=0)
                self._applied([rec], n)
                return
            except Exception as exc:  # noqa: BLE001
                error = f"{type(exc).__name__}: {exc}"
                log.warning(
                    "apply_failed", projection=self.name, attempt=attempt, error=error[:300]
                )
                await asyncio.sleep(self.retry_delay * attempt)
        await dead_letter(self.evlog, self.name, msg, error, self.owner)
        await self._apply_waiting([], advance_to=rec.seq)
        self.position = rec.seq

    def _applied(self, events: Sequence[RecordedEvent], n: int) -> None:
        self.position = max(self.position, events[-1].seq)
        metrics.EVENTS_APPLIED.labels(projection=self.name).inc(n)


Handler = Callable[[RecordedEvent], Awaitable[None]]


class DurableConsumer(_Reader):
    """A JetStream durable pull consumer: nack on error, bounded redelivery, dead letters."""

    def __init__(
        self,
        evlog: EventLog,
        name: str,
        filter_subject: str | Sequence[str],
        handler: Handler,
        *,
        max_deliver: int = 5,
        batch: int = 100,
        ack_wait: float = 30.0,
        nak_delay: float = 0.2,
        owner: str | None = None,
    ) -> None:
        super().__init__(evlog, batch=batch, owner=owner)
        self.name = name
        #: What the server sends it: one subject, or several (``filter_subjects``).
        self.filters = (
            (filter_subject,) if isinstance(filter_subject, str) else tuple(filter_subject)
        )
        self.handler = handler
        self.max_deliver = max_deliver
        self.ack_wait = ack_wait
        self.nak_delay = nak_delay
        self._sub: Any = None

    async def ensure(self) -> None:
        js = self.evlog.js
        wanted = ConsumerConfig(
            durable_name=self.name,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait,
            # One more than our own limit: we dead-letter on the last delivery ourselves, the
            # server's limit only catches a process that dies on every attempt.
            max_deliver=self.max_deliver + 1,
            max_ack_pending=self.batch * 4,
        )
        if len(self.filters) == 1:
            wanted.filter_subject = self.filters[0]
        else:
            wanted.filter_subjects = list(self.filters)
        try:
            info = await js.consumer_info(self.evlog.stream, self.name)
        except nats.js.errors.NotFoundError:
            await js.add_consumer(self.evlog.stream, wanted)
            return
        cfg = info.config
        has = (cfg.filter_subject,) if cfg.filter_subject else tuple(cfg.filter_subjects or ())
        if has != self.filters:
            # A consumer made by an earlier version with another filter (review's once read
            # every post event): the server (>= 2.10) changes a durable consumer's filter in
            # place and keeps what it has delivered and what was acknowledged.
            log.info(
                "durable_filter_changed", consumer=self.name, was=list(has), now=list(self.filters)
            )
            await js.add_consumer(self.evlog.stream, wanted)

    async def start(self) -> None:
        await self.ensure()
        self._sub = await self.evlog.js.pull_subscribe_bind(
            durable=self.name, stream=self.evlog.stream
        )
        self._task = asyncio.create_task(self._run(), name=f"durable:{self.name}")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            # The loop checks the flag between batches; a batch in hand is finished and acked.
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._task, timeout=5.0)
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                msgs = await self._sub.fetch(self.batch, timeout=0.5)
            except (nats.errors.TimeoutError, TimeoutError):
                continue
            except (nats.errors.ConnectionClosedError, nats.errors.DrainTimeoutError):
                return
            except Exception as exc:  # noqa: BLE001
                log.warning(
                    "fetch_failed", consumer=self.name, error=f"{type(exc).__name__}: {exc}"[:300]
                )
                await asyncio.sleep(0.5)
                continue
            for msg in msgs:
                await self._handle(msg)

    async def _handle(self, msg: Msg) -> None:
        try:
            rec = self.evlog.decode(msg)
        except EventDecodeError as exc:
            await refuse(self.evlog, self.name, msg, exc, self.owner)
            await msg.term()
            return
        outage = Outage(self.name)
        while True:
            try:
                with event_log_context(rec):
                    await self.handler(rec)
                break
            except Exception as exc:  # noqa: BLE001
                if unavailable(exc):
                    if self._stopping.is_set():
                        return  # unacked: redelivered to the next start, not counted against it
                    # Not the event's fault: retry in place, not by redelivery, which would
                    # count towards max_deliver and end in the dead-letter stream. Tell the
                    # server we are still at it, so it does not redeliver meanwhile.
                    with contextlib.suppress(Exception):
                        await msg.in_progress()
                    await outage.wait(exc)
                    continue
                outage.over()
                with event_log_context(rec):
                    await self._failed(msg, rec, exc)
                return
        outage.over()
        await msg.ack()

    async def _failed(self, msg: Msg, rec: RecordedEvent, exc: Exception) -> None:
        """A fault of the event: redeliver later, or dead-letter on the last delivery.

        Called inside ``event_log_context(rec)``, which names the event on every line logged.
        """
        error = f"{type(exc).__name__}: {exc}"
        delivered = msg.metadata.num_delivered
        log.warning("handler_failed", consumer=self.name, delivery=delivered, error=error[:300])
        if delivered >= self.max_deliver:
            await dead_letter(self.evlog, self.name, msg, error, self.owner)
            await msg.term()
        else:
            await msg.nak(delay=self.nak_delay * delivered)
