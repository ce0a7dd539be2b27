"""The event-log client: one JetStream stream is the source of truth.

Appends are idempotent (``Nats-Msg-Id`` is the event id, derived from the command id) and
optionally guarded by per-aggregate optimistic concurrency
(``Nats-Expected-Last-Subject-Sequence`` with ``...-Subject`` = the aggregate's wildcard).
A command that yields several events is appended as one JetStream atomic batch, so either all
of its events are recorded or none.

Everything goes through JetStream publish with a PubAck: a core-NATS publish would let a
refused append vanish silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import re
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypedDict, Unpack

import nats
import nats.aio.client
import nats.errors
import nats.js.errors
import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    ConsumerInfo,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.protocol.command import hpub_cmd

from gongkai import metrics, subjects
from gongkai.directget import StoredMsg, last_stored, read_subject
from gongkai.events.envelope import REGISTRY, Envelope, EventDecodeError, Registry
from gongkai.inbox import Inbox, Waiter, inbox_of
from gongkai.logtypes import (
    AppendResult,
    ConcurrencyConflict,
    EventLogError,
    RecordedEvent,
    one_aggregate,
)
from gongkai.runtime.settings import Settings
from gongkai.trust.keys import BATCH_MAX, TRUST_FILE, IntegrityError, Keyring, ServiceKey
from gongkai.trust.owners import owner_of

_WS = re.compile(r"\s")


def _parse_header_lines(raw: bytes) -> dict[str, str]:
    """nats-py's header parser, same results, without a Python-level loop per character.

    Every stored event carries its Nats-Msg-Id and expected-sequence headers, and nats-py 2.16
    checks header names for whitespace character by character: on replay that took more time
    than decoding the event itself.
    """
    out: dict[str, str] = {}
    for line in raw.split(b"\r\n"):
        if not line:
            continue
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        try:
            key = name.strip().decode("ascii")
        except UnicodeDecodeError:
            continue
        if _WS.search(key):
            continue
        out[key] = value.strip().decode("utf-8", "replace")
    return out


NATS._parse_header_lines = staticmethod(_parse_header_lines)  # type: ignore[method-assign]


#: nats-py's header block: ``NATS/1.0``, then `` <status>`` or the end of that line.
_HDR_LINE = len(b"NATS/1.0")


class _Unparsed(Mapping[str, str]):
    """A message's headers, parsed from their block the first time they are read.

    Most readers of the log read the headers of few messages or none: a replay without keys,
    a catch-up's messages passed over by subject (``Projection.server_filters``), the rebuild's
    reader process (only the events after the last checkpoint, whose signatures it checks one
    at a time). nats-py parses every message's headers as it arrives: a signed event's five
    header lines, its audit path among them, cost a replay about a fifth of its CPU. On an
    ``EventLog``'s connection (``_defer_headers``) an ordinary message carries this instead,
    and whoever reads it gets what nats-py would have given.
    """

    __slots__ = ("_block", "_parse", "_parsed")

    def __init__(self, block: bytes, parse: Any) -> None:
        self._block = block
        self._parse = parse
        self._parsed: dict[str, str] | None = None

    def parsed(self) -> dict[str, str]:
        """The headers as nats-py parses them (the same dict on every call)."""
        if self._parsed is None:
            # As nats-py reads a block without a status: the lines after ``NATS/1.0\r\n``.
            self._parsed = self._parse(self._block[_HDR_LINE + 2 :])
        return self._parsed

    def __getitem__(self, key: str) -> str:
        return self.parsed()[key]

    def get(self, key: str, default: Any = None) -> Any:
        # Mapping's own ``get`` goes through ``__getitem__`` and a KeyError for each absent
        # header; the trust check asks for three or four.
        return self.parsed().get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self.parsed()

    def __iter__(self) -> Iterator[str]:
        return iter(self.parsed())

    def __len__(self) -> int:
        return len(self.parsed())


def _defer_headers(nc: NATS) -> None:
    """Leave the headers of ``nc``'s ordinary messages unparsed until read (``_Unparsed``).

    Status messages (a pull request's end, a heartbeat: a status code after ``NATS/1.0``) are
    parsed as nats-py parses them. Only where nats-py parses the lines itself (not through the
    optional ``fast_mail_parser``) and only on an ``EventLog``'s own connection. (nats-py
    2.16's ``Client._process_headers``, pinned in requirements.lock; the test reading a log
    both ways fails if a new version reads headers another way.)
    """
    if nats.aio.client.parse_email is not None:
        return
    parse = nc._process_headers
    lines = nc._parse_header_lines

    async def deferred(block: bytes) -> Mapping[str, str] | None:
        if block and len(block) > _HDR_LINE and block[_HDR_LINE] != ord(" "):
            return _Unparsed(block, lines)
        return await parse(block)  # type: ignore[no-any-return]

    nc._process_headers = deferred  # type: ignore[method-assign,assignment]


def _setter(name: str) -> Callable[[RecordedEvent, Any], None]:
    slot: Any = RecordedEvent.__dict__[name]
    return slot.__set__  # type: ignore[no-any-return]


_SET_SEQ, _SET_SUBJECT, _SET_NS, _SET_ENVELOPE, _SET_DATA = (
    _setter(name) for name in ("seq", "subject", "stored_ns", "envelope", "data")
)


def _recorded(seq: int, subject: str, ns: int, env: Envelope[Any], data: bytes) -> RecordedEvent:
    """``RecordedEvent(seq, subject, ns, env, data)`` at about half the cost (one per event
    read): its slots set through their own descriptors, where the frozen dataclass's
    ``__init__`` calls ``object.__setattr__`` for each field. Nothing else runs in it (no
    ``__post_init__``); test_eventlog holds the two equal."""
    ev = object.__new__(RecordedEvent)
    _SET_SEQ(ev, seq)
    _SET_SUBJECT(ev, subject)
    _SET_NS(ev, ns)
    _SET_ENVELOPE(ev, env)
    _SET_DATA(ev, data)
    return ev


ERR_WRONG_LAST_SEQUENCE = 10071
ERR_BATCH_DUPLICATE_ID = 10201


class EventIntegrityError(EventDecodeError):
    """A stored event that fails a trust check: never applied, dead-lettered with the reason.

    ``check`` is one of ``gongkai.trust.keys.CHECKS``.
    """

    def __init__(self, check: str, detail: str, *, seq: int, subject: str) -> None:
        super().__init__(f"integrity check {check} failed: {detail}")
        self.check = check
        self.detail = detail
        self.seq = seq
        self.subject = subject


def local_keyring() -> Keyring | None:
    """The keys of a local data directory, for a tool that does not bring its own.

    ``GONGKAI_KEYS_DIR`` or ``<GONGKAI_DATA_DIR or var>/keys``, when it holds trust anchors.
    """
    keys_dir = Settings.from_env().keys_path
    if not (keys_dir / TRUST_FILE).exists():
        return None
    return Keyring.load(keys_dir)


class _Message(Protocol):
    """What decoding needs of a stored message, delivered (``Msg``) or read directly."""

    @property
    def subject(self) -> str: ...
    @property
    def data(self) -> bytes: ...
    @property
    def headers(self) -> Mapping[str, str] | None: ...


def ack_position(msg: Msg) -> tuple[int, int, int]:
    """(stream sequence, stored-at ns, pending) from a JetStream message's reply subject.

    nats-py builds a metadata object per message for the same three numbers; on replay that is
    a noticeable share of the cost.
    """
    t = (msg.reply or "").split(".")
    if len(t) == 9:  # $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
        return int(t[5]), int(t[7]), int(t[8])
    if len(t) >= 11:  # with domain and account hash tokens
        return int(t[7]), int(t[9]), int(t[10])
    md = msg.metadata
    ts = md.timestamp
    ns = int(ts.timestamp() * 1e9) if isinstance(ts, datetime) else 0
    return md.sequence.stream, ns, md.num_pending or 0


def _consumer_sequence(msg: Msg) -> int | None:
    """The consumer's own count of what it has sent, from the reply subject (None: unknown)."""
    t = (msg.reply or "").split(".")
    if len(t) == 9:
        return int(t[6])
    if len(t) >= 11:
        return int(t[8])
    return None


#: Headers that instruct the server at write time (optimistic concurrency, atomic batches):
#: stored with a message, but not part of the record a restore gives again.
WRITE_TIME_HEADERS = ("Nats-Expected-", "Nats-Batch-")


@dataclass(frozen=True, slots=True)
class StreamSettings:
    name: str = subjects.STREAM
    replicas: int = 1
    # Dedup window: a retried command within this window is recorded once.
    duplicate_window_s: float = 3600.0
    max_msg_size: int = 1024 * 1024


ANY = None  # expected=ANY: append without a concurrency check
#: At most this many messages a one-shot read takes from the client's queue at a time.
ORDERED_BATCH = 256
#: Seconds the server keeps the ordered consumer of a finished history read (see ``load``).
READ_CONSUMER_IDLE_S = 0.5
#: Seconds the server keeps a one-shot read's pull consumer with no request open (see
#: ``_pulled``): a reader still has what was sent for a while after its last request was
#: answered, and one that stops longer than this goes on through a new consumer.
READ_PULL_IDLE_S = 5.0
#: A following reader's pull requests: at most this many messages and bytes each, at most two
#: requests outstanding. That bounds what a far-behind reader holds in memory, whatever the
#: length of the log (a push consumer would deliver as fast as the server reads the stream).
FOLLOW_BATCH = 1000
FOLLOW_MAX_BYTES = 4 * 1024 * 1024
#: The server answers an open pull request with a heartbeat this often while it has nothing;
#: three missed in a row (a restarted server, a lost consumer) end the read with an error.
FOLLOW_HEARTBEAT_S = 1.0
FOLLOW_EXPIRES_S = 30.0
#: A following reader's consumer outlives a crashed or stopped reader this long (services may
#: not delete consumers: least privilege on the bus). A live reader always has a request open,
#: which keeps its consumer; one paused longer than this (a read-model database down for
#: minutes) finds it gone, and starts again from its checkpoint.
FOLLOW_CONSUMER_IDLE_S = 60.0


def _filters(filter_subject: str | Sequence[str] | None) -> list[str]:
    """One reader's filter subjects, without repeats; every event when none is given."""
    if filter_subject is None or filter_subject == "":
        return [subjects.all_events()]
    if isinstance(filter_subject, str):
        return [filter_subject]
    out = list(dict.fromkeys(filter_subject))
    if not out:
        raise ValueError("a reader needs at least one filter subject")
    return out


def _start_at(from_seq: int, from_time: datetime | None) -> ConsumerConfig:
    """A consumer's start: at a time, at a sequence, or at the beginning."""
    if from_time is not None:
        return ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=from_time.astimezone(UTC)
        )
    if from_seq > 1:
        return ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=from_seq
        )
    return ConsumerConfig(deliver_policy=DeliverPolicy.ALL)


def _pull_request(batch: int) -> bytes:
    """A pull consumer's request for ``batch`` messages, as every reader of the log asks: a
    byte budget, an end, and the heartbeats ``_next_pulled`` counts on to tell silence from
    a lost consumer."""
    return json.dumps(
        {
            "batch": batch,
            "max_bytes": FOLLOW_MAX_BYTES,
            "expires": int(FOLLOW_EXPIRES_S * 1e9),
            "idle_heartbeat": int(FOLLOW_HEARTBEAT_S * 1e9),
        }
    ).encode()


def _after(cfg: ConsumerConfig, seq: int) -> ConsumerConfig:
    """``cfg`` starting after sequence ``seq`` (as it was, if nothing was read yet)."""
    if seq == 0:
        return dataclasses.replace(cfg)
    return dataclasses.replace(
        cfg,
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=seq + 1,
        opt_start_time=None,
    )


class _PullFollower:
    """The handle ``raw_replay(follow=True)`` gives out: its consumer's info, and a way to stop."""

    def __init__(self, js: JetStreamContext, stream: str, name: str, sub: Any) -> None:
        self.js = js
        self.stream = stream
        self.name = name
        self.sub = sub

    async def consumer_info(self) -> Any:
        return await self.js.consumer_info(self.stream, self.name)

    async def unsubscribe(self) -> None:
        await self.sub.unsubscribe()

    def arrived(self) -> bool:
        """Whether a message of the log is already here, the next the reader gets without
        waiting on the server (a heartbeat or a request's end is not one: after those the
        reader may wait)."""
        return any(m.data for m in self.sub._pending_queue._queue)  # nats-py 2.x internals


def _headers(env: Envelope[Any]) -> dict[str, str]:
    # Only what the server and the readers' trust check need: every header is stored with the
    # message and parsed again by every reader, so the event type and version are read from
    # the subject and the body.
    return {"Nats-Msg-Id": env.event_id}


def _pub_ack(msg: Msg | BaseException) -> dict[str, Any]:
    """A PubAck's fields, or the error js.publish raised for it: NoStreamResponseError when no
    stream takes the subject (the server's no-responders status); an inbox's error (no answer,
    the connection closed) as it is."""
    if isinstance(msg, BaseException):
        raise msg
    if msg.headers and msg.headers.get("Status") == "503":
        raise nats.js.errors.NoStreamResponseError
    try:
        ack: dict[str, Any] = orjson.loads(msg.data)  # the server's JSON, a tenth of json's cost
    except ValueError as exc:
        raise EventLogError(f"bad PubAck: {exc}") from None
    return ack


class Selection(TypedDict, total=False):
    """Which messages a read of the log takes: ``raw_replay``'s first parameters, by name."""

    from_seq: int
    from_time: datetime | None
    filter_subject: str | Sequence[str] | None
    follow: bool


class EventLog:
    def __init__(
        self,
        nc: NATS,
        *,
        stream: str = subjects.STREAM,
        registry: Registry = REGISTRY,
        timeout: float = 5.0,
    ) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream(timeout=timeout, publish_async_max_pending=4000)
        self.stream = stream
        self.registry = registry
        self.timeout = timeout
        #: Label for the appended-events metric: the service that owns this connection.
        self.service = "client"
        #: The connection's reply inbox (``gongkai.inbox``), where PubAcks come.
        self._inbox: Inbox | None = None
        #: How this log was reached (url, options), so a helper process can open its own
        #: connection to it (see gongkai.prefetch); None when built from a bare client.
        self.connect_args: tuple[str, dict[str, Any]] | None = None
        #: Signing keys and trust anchors: with them every append is signed by the event
        #: type's owner and every decode verified; without (a bare downstream client), neither.
        self.keys: Keyring | None = None
        #: Told of every event a consumer of this connection refused on a trust check, with
        #: the refused bytes (accountability records an IntegrityAlert).
        self.on_integrity: Callable[[EventIntegrityError, bytes], Awaitable[None]] | None = None
        #: Whether an aggregate's history may be read by direct get (``load``); None until
        #: the stream's replica count is known.
        self._direct_load: bool | None = None
        #: Lone appends of this turn of the event loop waiting for their shared signature
        #: (``_signed``): (signer, subject, bytes, the future of its headers).
        self._turn: list[tuple[ServiceKey, str, bytes, asyncio.Future[dict[str, str]]]] | None = (
            None
        )

    def use_keys(self, keys: Keyring | None) -> EventLog:
        self.keys = keys
        return self

    def _signer(self, env: Envelope[Any]) -> ServiceKey | None:
        """The key that signs ``env`` here; None without keys (a bare client signs nothing)."""
        if self.keys is None:
            return None
        signer = self.keys.signer_for(env.type)
        if signer is None:
            # Nobody signs for another service: an append it could not sign is refused here
            # rather than dead-lettered by every reader.
            raise EventLogError(
                f"{self.service} holds no key of {owner_of(env.type)}, which decides {env.type}"
            )
        return signer

    @staticmethod
    def _encode(env: Envelope[Any]) -> tuple[str, bytes, dict[str, str]]:
        subj = subjects.event_subject(env.aggregate_type, env.aggregate_id, env.type)
        return subj, env.to_json(), _headers(env)

    def _prepare(self, env: Envelope[Any]) -> tuple[str, bytes, dict[str, str]]:
        """An event's subject, bytes and headers, signed by its owner's key when we hold it."""
        return self._prepare_many([env])[0]

    def _prepare_many(
        self, events: Sequence[Envelope[Any]]
    ) -> list[tuple[str, bytes, dict[str, str]]]:
        """Events appended together, each signer's share under batch signatures.

        Refused whole (EventLogError) before anything is published if one has no signer here.
        """
        signers = [self._signer(env) for env in events]
        prepared = [self._encode(env) for env in events]
        by_signer: dict[str, list[int]] = {}
        for i, signer in enumerate(signers):
            if signer is not None:
                by_signer.setdefault(signer.service, []).append(i)
        for idx in by_signer.values():
            signer = signers[idx[0]]
            assert signer is not None
            sigs = signer.sign_events([(prepared[i][0], prepared[i][1]) for i in idx])
            for i, hdr in zip(idx, sigs, strict=True):
                prepared[i][2].update(hdr)
        return prepared

    @classmethod
    async def connect(cls, url: str, **options: Any) -> EventLog:
        # "nats://a:4222,nats://b:4222": every node of a cluster, so the first connect does
        # not depend on one of them being up.
        servers = [u.strip() for u in url.split(",") if u.strip()]
        keys = options.pop("keys", None)
        nc = await nats.connect(servers, **options)
        _defer_headers(nc)
        log = cls(nc)
        log.connect_args = (url, dict(options))
        log.keys = keys if keys is not None else local_keyring()
        return log

    @classmethod
    async def connect_once(
        cls, url: str, user: str | None = None, password: str | None = None
    ) -> EventLog:
        """Connect for a command-line tool: fail at once instead of retrying.

        nats-py retries a failed first connect every 2 s, 60 times, unless told otherwise;
        a tool pointed at a dead URL should say so in two seconds, not two minutes.
        """
        opts: dict[str, Any] = {
            "connect_timeout": 2,
            "allow_reconnect": False,
            "max_reconnect_attempts": 1,
        }
        if user:
            opts |= {"user": user, "password": password or ""}
        return await cls.connect(url, **opts)

    async def close(self) -> None:
        """Flush what is buffered (acks, naks), then close.

        Not drain(): draining waits for every subscription's buffered messages to be handled,
        and a stopped replay's ordered consumer has buffered messages nobody will read.
        Nothing is lost by not draining: appends are only acknowledged once the server has
        stored them, and unacknowledged deliveries come again.
        """
        if self.nc.is_closed:
            return
        with contextlib.suppress(Exception):
            await self.nc.flush(timeout=2)
        await self.nc.close()

    # ---- stream management -------------------------------------------------------------

    async def ensure_stream(self, settings: StreamSettings | None = None) -> None:
        """Create the event and dead-letter streams, or verify that they are fit for use."""
        s = settings or StreamSettings(name=self.stream)
        wanted = StreamConfig(
            name=s.name,
            description="gongkai event log: the single source of truth",
            subjects=[subjects.all_events()],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.NEW,
            num_replicas=s.replicas,
            duplicate_window=s.duplicate_window_s,
            max_msg_size=s.max_msg_size,
            deny_delete=True,
            deny_purge=True,
            allow_direct=True,
            allow_atomic=True,
        )
        await self._ensure(wanted)
        dlq = StreamConfig(
            name=subjects.DLQ_STREAM,
            description="gongkai dead letters: events a consumer could not apply, with the error",
            subjects=[subjects.all_dead_letters()],
            storage=StorageType.FILE,
            num_replicas=s.replicas,
            deny_delete=True,
            deny_purge=False,
        )
        await self._ensure(dlq)

    async def verify_stream(self) -> None:
        """Check the streams exist and protect their messages, without the right to change them.

        What a least-privilege service does at start; only the init step creates streams.
        """
        for name in (self.stream, subjects.DLQ_STREAM):
            try:
                info = await self.js.stream_info(name)
            except nats.js.errors.NotFoundError:
                raise EventLogError(
                    f"stream {name} does not exist: run the stream-init step"
                ) from None
            if name == self.stream and not (info.config.deny_delete and info.config.deny_purge):
                raise EventLogError(f"stream {name} allows deleting or purging events")

    async def _ensure(self, wanted: StreamConfig) -> None:
        assert wanted.name
        try:
            info = await self.js.stream_info(wanted.name)
        except nats.js.errors.NotFoundError:
            await self.js.add_stream(wanted)
            return
        have = info.config
        problems = []
        if set(have.subjects or []) != set(wanted.subjects or []):
            problems.append(f"subjects {have.subjects} != {wanted.subjects}")
        if have.storage != wanted.storage:
            problems.append(f"storage {have.storage} != {wanted.storage}")
        if wanted.deny_delete and not have.deny_delete:
            problems.append("delete is allowed")
        if wanted.deny_purge and not have.deny_purge:
            problems.append("purge is allowed")
        if problems:
            raise EventLogError(f"stream {wanted.name} exists but is unfit: " + "; ".join(problems))
        if wanted.allow_atomic and not have.allow_atomic:
            # Allowing atomic batches is a safe in-place change; everything else is checked above.
            have.allow_atomic = True
            await self.js.update_stream(have)

    async def last_sequence(self, filter_subject: str | None = None) -> int:
        """The stream's last sequence, or that of the last event matching ``filter_subject``.

        0 when nothing matches yet. Both are answered by the stream's leader (a direct get only
        on a stream of one replica: a replica's, which may lag, never), so an event whose
        append was acknowledged is counted.
        """
        if filter_subject is None:
            info = await self.js.stream_info(self.stream)
            return int(info.state.last_seq)
        if await self._loads_directly():
            # One replica, so the server that acknowledged every append answers a direct get
            # too: the message as stored, without the API's JSON and base64 of it and without
            # its queue (280 -> 200 µs of server CPU for every person's last, bench/profiles).
            newest = await last_stored(self.nc, self.stream, filter_subject)
            return newest.seq if newest is not None else 0
        # The stream's own message get; only the sequence is read (nats-py's get_last_msg also
        # decodes the payload and parses the headers with the email package, a third of its
        # cost, for nothing here).
        msg = await self.nc.request(
            f"$JS.API.STREAM.MSG.GET.{self.stream}",
            json.dumps({"last_by_subj": filter_subject}).encode(),
            timeout=self.timeout,
        )
        resp = json.loads(msg.data)
        err = resp.get("error")
        if err is not None:
            if err.get("code") == 404:  # nothing matches yet (nats-py: NotFoundError)
                return 0
            raise nats.js.errors.APIError.from_error(err)
        return int(resp["message"]["seq"])

    # ---- appends -----------------------------------------------------------------------

    async def append(
        self, events: Sequence[Envelope[Any]], *, expected: int | None = ANY
    ) -> AppendResult:
        """Append one command's events to one aggregate.

        ``expected`` is the aggregate's last stream sequence the command was decided on
        (0 for a new aggregate), or ANY to skip the check.
        """
        if not events:
            return AppendResult(())
        agg = one_aggregate(events)
        try:
            if len(events) == 1:
                result = await self._append_one(events[0], agg, expected)
            else:
                result = await self._append_batch(events, agg, expected)
            if not result.duplicate:
                for e in events:
                    metrics.EVENTS_APPENDED.labels(service=self.service, type=e.type).inc()
            return result
        except nats.js.errors.APIError as exc:
            if exc.err_code in (ERR_WRONG_LAST_SEQUENCE, ERR_BATCH_DUPLICATE_ID):
                # A retried command whose first attempt was recorded arrives with a stale
                # expected sequence; if every event id is already in the aggregate's history
                # this is a duplicate, not a conflict.
                found = await self._find_recorded(
                    events[0].aggregate_type, events[0].aggregate_id, [e.event_id for e in events]
                )
                if found is not None:
                    return AppendResult(found, duplicate=True)
                if exc.err_code == ERR_WRONG_LAST_SEQUENCE:
                    metrics.APPEND_CONFLICTS.labels(service=self.service).inc()
                    raise ConcurrencyConflict(agg, expected or 0, exc.description or "") from None
            raise EventLogError(f"append to {agg} refused: {exc.description}") from None

    def _guard(self, hdr: dict[str, str], agg: str, expected: int | None) -> dict[str, str]:
        if expected is not None:
            hdr["Nats-Expected-Last-Subject-Sequence"] = str(expected)
            hdr["Nats-Expected-Last-Subject-Sequence-Subject"] = agg
        return hdr

    async def _signed(self, env: Envelope[Any]) -> tuple[str, bytes, dict[str, str]]:
        """A lone append's subject, bytes and headers, signed.

        While other appends wait for their PubAcks (a service under load), the lone appends of
        one turn of the event loop share a batch signature (``ServiceKey.sign_events``, the
        tree a multi-event append already gets): one Ed25519 signature (55 µs on this machine,
        7 % of an HTTP submission) for all of them, and one verification for each reader
        instead of one an event. Each event still verifies on its own (its place and audit
        path), whatever else its batch held. An append with nothing else in flight is signed
        at once, as before: it does not wait for the turn to end.
        """
        subj, data, hdr = self._encode(env)
        signer = self._signer(env)
        if signer is None:
            return subj, data, hdr
        inbox = self._inbox
        if self._turn is None and (inbox is None or not inbox.waiting):
            hdr.update(signer.sign_event(subj, data))
            return subj, data, hdr
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[dict[str, str]] = loop.create_future()
        if self._turn is None:
            self._turn = []
            # Once the callbacks ready now have run: the appends they make join this batch.
            loop.call_soon(self._sign_turn)
        self._turn.append((signer, subj, data, fut))
        hdr.update(await fut)
        return subj, data, hdr

    def _sign_turn(self) -> None:
        turn, self._turn = self._turn or [], None
        by_signer: dict[str, list[tuple[ServiceKey, str, bytes, asyncio.Future[Any]]]] = {}
        for item in turn:
            by_signer.setdefault(item[0].service, []).append(item)
        for items in by_signer.values():
            try:
                sigs = items[0][0].sign_events([(s, d) for _, s, d, _ in items])
            except Exception as exc:  # noqa: BLE001 - handed to each append of the batch
                for *_, fut in items:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (*_, fut), sig in zip(items, sigs, strict=True):
                if not fut.done():  # a caller cancelled meanwhile appends nothing
                    fut.set_result(sig)

    async def _append_one(
        self, env: Envelope[Any], agg: str, expected: int | None
    ) -> AppendResult:
        subj, data, hdr = await self._signed(env)
        self._guard(hdr, agg, expected)
        # What js.publish(stream=) adds: a subject another stream took is refused, not stored.
        hdr["Nats-Expected-Stream"] = self.stream
        resp = await self._request_ack(subj, hdr, data)
        if "error" in resp:
            raise nats.js.errors.APIError.from_error(resp["error"])
        return AppendResult((int(resp["seq"]),), duplicate=bool(resp.get("duplicate")))

    async def _request_ack(
        self, subject: str, headers: dict[str, str], data: bytes
    ) -> dict[str, Any]:
        """Publish one message and wait for its PubAck, on the connection's reply inbox.

        What js.publish does, minus what a lone durable append felt (issue 18, the peer row;
        bench/profiles/README.md): nats-py's request makes a fresh inbox token (a NUID and
        random bytes), a future, wait_for's own waiter, and a PubAck object for each call,
        checks every header one by one, and leaves the write to its flusher task, one more
        turn of the event loop before the server even sees the message. Here the token is
        a counter on the connection's one wildcard inbox (``gongkai.inbox``), the timeout a
        timer on the future, and the message is written to the socket at once. The same
        errors: nats.errors.TimeoutError when no PubAck comes within the timeout,
        NoStreamResponseError when no stream takes the subject, the server's refusal as the
        PubAck's error; ConnectionClosedError at once when the connection closes meanwhile.
        """
        inbox = await self._ack_inbox()

        def send(reply: str) -> Awaitable[None]:
            return self._hpub(subject, reply, headers, data, at_once=True)

        return _pub_ack(await inbox.request(send, self.timeout))

    async def _append_batch(
        self, events: Sequence[Envelope[Any]], agg: str, expected: int | None
    ) -> AppendResult:
        batch_id = events[0].event_id
        n = len(events)
        prepared = self._prepare_many(events)  # refused whole, before any publish
        for i, (subj, data, hdr) in enumerate(prepared, 1):
            hdr["Nats-Batch-Id"] = batch_id
            hdr["Nats-Batch-Sequence"] = str(i)
            hdr["Nats-Expected-Stream"] = self.stream
            if i == 1:
                self._guard(hdr, agg, expected)
            if i < n:
                await self.nc.publish(subj, data, headers=hdr)
                continue
            hdr["Nats-Batch-Commit"] = "1"
            try:
                msg = await self.nc.request(subj, data, headers=hdr, timeout=self.timeout)
            except nats.errors.NoRespondersError:
                raise EventLogError(f"no stream answers for {subj}") from None
            resp = json.loads(msg.data)
            if "error" in resp:
                raise nats.js.errors.APIError.from_error(resp["error"])
            last = int(resp["seq"])
            return AppendResult(tuple(range(last - n + 1, last + 1)))
        raise AssertionError("unreachable")

    async def _ack_inbox(self) -> Inbox:
        """The connection's reply inbox, for every PubAck we wait for (nats-py's publish_async
        hangs on errors; its request costs a lone append a fresh inbox token and future each
        time)."""
        inbox = self._inbox
        if inbox is None or inbox.ended:
            inbox = self._inbox = await inbox_of(self.nc)
        return inbox

    @property
    def _ack_futures(self) -> dict[str, Waiter]:
        """What waits on this log's connection's inbox (the tests look that nothing is left)."""
        return self._inbox.waiting if self._inbox is not None else {}

    async def _hpub(
        self,
        subject: str,
        reply: str,
        headers: dict[str, str],
        data: bytes,
        *,
        at_once: bool = False,
    ) -> None:
        """``nc.publish`` with headers, minus its per-header checks.

        nats-py checks and encodes each header one by one (a regex, strip, translate, five
        small writes): with the seven headers of a signed event that was a quarter of a
        pipelined append. Ours are built here from identifiers, integers, hex and base64 —
        never a newline — so they are joined in one go. Whatever is unusual (closed, draining,
        reconnecting, too large) goes through ``nc.publish``, which raises or buffers as it
        documents. (nats-py 2.x internals, pinned in requirements.lock.)

        ``at_once``: a caller about to wait for the answer has the message written to the
        socket now, when nothing is queued before it, instead of by nats-py's flusher task
        at the loop's next turn; a burst (append_pipelined) leaves it to the flusher, which
        writes everything queued in one system call.
        """
        nc = self.nc
        if (
            nc.is_closed
            or nc.is_draining_pubs
            or not nc.is_connected
            or len(data) > nc._max_payload
        ):
            await nc.publish(subject, data, reply=reply, headers=headers)
            return
        lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        hdr = f"NATS/1.0\r\n{lines}\r\n".encode()
        nc.stats["out_msgs"] += 1
        nc.stats["out_bytes"] += len(data)
        cmd = hpub_cmd(subject, reply, hdr, data)
        if at_once and not nc._pending and nc._transport is not None:
            # Nothing queued before it, so the order of messages on the socket is kept.
            nc._transport.write(cmd)
            return
        await nc._send_command(cmd)
        if nc._flush_queue is not None and nc._flush_queue.empty():
            await nc._flush_pending()

    async def append_pipelined(
        self, commands: Sequence[tuple[Envelope[Any], int | None]], *, window: int = 2000
    ) -> list[AppendResult | EventLogError]:
        """Append many single-event commands with up to ``window`` acks in flight.

        Each item is (event, expected); results come back in order, a conflict as an exception
        value rather than a raise, so one stale writer does not hide the others' outcome.
        """
        inbox = await self._ack_inbox()
        acks: list[tuple[str, asyncio.Future[Msg]]] = []
        # Refused whole, before anything is published, if one event has no signer here.
        for env, _ in commands:
            self._signer(env)
        prepared: list[tuple[str, bytes, dict[str, str]]] = []
        for i, (env, expected) in enumerate(commands):
            if i >= window and not acks[i - window][1].done():
                await asyncio.wait([acks[i - window][1]])
            if i % BATCH_MAX == 0:
                # Signed a batch at a time (one signature per BATCH_MAX events), just ahead of
                # publishing, so the first acks do not wait for the whole burst to be signed.
                prepared = self._prepare_many([e for e, _ in commands[i : i + BATCH_MAX]])
            subj, data, hdr = prepared[i % BATCH_MAX]
            self._guard(hdr, subjects.aggregate_filter(env.aggregate_type, env.aggregate_id),
                        expected)
            token, fut = inbox.expect()
            acks.append((token, fut))
            await self._hpub(subj, inbox.reply_to(token), hdr, data)
        out: list[AppendResult | EventLogError] = []
        answers = await inbox.gather(acks, self.timeout)
        for (env, expected), answer in zip(commands, answers, strict=True):
            try:
                resp = _pub_ack(answer)
            except nats.errors.TimeoutError:
                out.append(EventLogError("no PubAck within the timeout; the append may be lost"))
                continue
            except nats.js.errors.NoStreamResponseError:
                out.append(EventLogError("no stream answers: is the stream created?"))
                continue
            except EventLogError as exc:
                out.append(exc)
                continue
            except Exception as exc:  # noqa: BLE001 - the connection closed, say
                out.append(EventLogError(str(exc)))
                continue
            err = resp.get("error")
            if err is None:
                dup = bool(resp.get("duplicate"))
                out.append(AppendResult((int(resp["seq"]),), duplicate=dup))
                if not dup:
                    metrics.EVENTS_APPENDED.labels(service=self.service, type=env.type).inc()
            elif err.get("err_code") == ERR_WRONG_LAST_SEQUENCE:
                agg = subjects.aggregate_filter(env.aggregate_type, env.aggregate_id)
                out.append(ConcurrencyConflict(agg, expected or 0, str(err.get("description"))))
            else:
                out.append(EventLogError(f"append refused: {err.get('description')}"))
        return out

    async def restore(
        self, messages: Sequence[tuple[int, str, dict[str, str], bytes]], *, window: int = 2000
    ) -> int:
        """Store exported messages as they were: same subject, headers (message id, signature,
        batch path) and bytes, each at its original sequence (``gongkai events import``).

        The write-time instructions a message was stored with (``WRITE_TIME_HEADERS``: the
        concurrency checks and the atomic batch's markers) are not given again: they were
        checked when it was first written, and a restore stores one message after the other.
        Each carries ``Nats-Expected-Last-Sequence`` = its sequence - 1, so a message lands
        only right after its predecessor: out of order, on a stream that is not the export's
        prefix, or after a failure, the rest are refused and nothing is stored out of place.
        Raises EventLogError naming the first sequence not stored. Returns how many were.
        """
        inbox = await self._ack_inbox()
        acks: list[tuple[str, asyncio.Future[Msg]]] = []
        for i, (seq, subject, headers, data) in enumerate(messages):
            if i >= window and not acks[i - window][1].done():
                await asyncio.wait([acks[i - window][1]])
            hdr = {k: v for k, v in headers.items() if not k.startswith(WRITE_TIME_HEADERS)}
            hdr["Nats-Expected-Last-Sequence"] = str(seq - 1)
            token, fut = inbox.expect()
            acks.append((token, fut))
            await self.nc.publish(subject, data, reply=inbox.reply_to(token), headers=hdr)
        answers = await inbox.gather(acks, self.timeout)
        for (seq, _, _, _), answer in zip(messages, answers, strict=True):
            if isinstance(answer, nats.errors.TimeoutError):
                raise EventLogError(f"sequence {seq}: no PubAck within the timeout")
            try:
                resp = _pub_ack(answer)
            except Exception as exc:  # noqa: BLE001 - said as the sequence's failure
                resp = {"error": {"description": str(exc)}}
            if "error" in resp:
                raise EventLogError(
                    f"sequence {seq} not stored: {resp['error'].get('description')}"
                )
            if int(resp["seq"]) != seq:
                raise EventLogError(f"sequence {seq} was stored as {resp['seq']}")
        return len(acks)

    # ---- reads -------------------------------------------------------------------------

    def decode(self, msg: Msg, *, verify: bool = True) -> RecordedEvent:
        """The event of a stored message; with keys, only if its signature holds.

        An event that fails a trust check raises IntegrityError (an EventDecodeError, so every
        consumer dead-letters it with the reason instead of applying it) and is counted in
        ``gongkai_integrity_failures_total``. ``verify=False`` is for a reader that checked the
        bytes some other way (against a signed checkpoint of the log).
        """
        seq, ns, _ = ack_position(msg)
        return self._decode_at(msg, seq, ns, verify)

    def decode_at(self, msg: Msg, seq: int, ns: int) -> RecordedEvent:
        """``decode`` of a delivered message whose position (``ack_position``) the reader has
        already parsed: a catch-up reads it for its own bookkeeping, and parsing the reply
        subject twice was a microsecond an event."""
        return self._decode_at(msg, seq, ns)

    def decode_stored(self, msg: StoredMsg, *, verify: bool = True) -> RecordedEvent:
        """``decode`` of a message read by ``read_stored``."""
        return self._decode_at(msg, msg.seq, msg.stored_ns, verify)

    def read_stored(self, filter_subject: str, *, from_seq: int = 1) -> AsyncIterator[StoredMsg]:
        """A few messages by subject without a consumer (``gongkai.directget``): for a read of
        a handful of aggregates, where a consumer's set-up costs more than the read. On a
        clustered stream any replica answers, so a replica that lags may not have the newest
        messages yet: a reader that must see its own writes (a command's history) uses
        ``load``, which reads this way only on a stream of one replica."""
        return read_subject(self.nc, self.stream, filter_subject, from_seq=from_seq)

    def _decode_at(
        self, msg: _Message, seq: int, ns: int, verify: bool = True
    ) -> RecordedEvent:
        """``decode`` of a message whose position the reader already parsed."""
        subject = msg.subject
        etype = subject[subject.rfind(".") + 1 :]
        keys = self.keys if verify else None
        if keys is None:
            env = self.registry.decode(msg.data, msg.headers, subject_type=etype)
            return _recorded(seq, subject, ns, env, msg.data)
        headers = msg.headers
        if type(headers) is _Unparsed:
            headers = headers.parsed()  # read three or four times below: once, as a dict
        try:
            key = keys.trust.check(subject, msg.data, headers, etype)
            env = self.registry.decode(msg.data, headers, subject_type=etype)
            keys.trust.check_retired(key, env.recorded_at, etype)
        except IntegrityError as exc:
            metrics.INTEGRITY_FAILURES.labels(service=self.service, check=exc.check).inc()
            raise EventIntegrityError(
                exc.check,
                f"sequence {seq} ({subject}): {exc.detail}",
                seq=seq,
                subject=subject,
            ) from None
        return _recorded(seq, subject, ns, env, msg.data)

    async def load(
        self, aggregate_type: str, aggregate_id: str, *, after: int = 0
    ) -> tuple[list[RecordedEvent], int]:
        """One aggregate's whole history and its last sequence (0 if it has none).

        An event that fails a trust check is left out of the history — never believed — but
        its sequence still counts as the aggregate's last: the next append's expected sequence
        must be the stream's, or one forged message would block the aggregate for good.

        ``after``: only the events stored after that sequence, and the last sequence (``after``
        when there are none): the rest of a history the caller holds from an earlier load (the
        stream denies deletes and purges, so what it read stays the history's beginning).
        """
        events: list[RecordedEvent] = []
        last = after
        filt = subjects.aggregate_filter(aggregate_type, aggregate_id)
        if await self._loads_directly():
            if after:
                # Usually nothing was stored since (a unit's policy, a signer's roles): the
                # server answers that from its subject index, where a read from ``after`` would
                # walk every message stored since (``gongkai.directget``).
                newest = await last_stored(self.nc, self.stream, filt)
                if newest is None or newest.seq <= after:
                    return events, last
            async for stored in self.read_stored(filt, from_seq=after + 1):
                last = stored.seq
                try:
                    events.append(self.decode_stored(stored))
                except EventIntegrityError:
                    continue  # dead-lettered and alerted by the consumers that meet it
            return events, last
        # An aggregate's few events, once per command on a replicated stream: through the
        # ordered consumer, gone half a second after the read (a pull consumer outlives the
        # read longer, and hundreds of commands a second would fill the stream's consumers).
        cfg = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=after + 1,  # 1: the whole history
            ack_policy=AckPolicy.NONE,
        )
        async with contextlib.aclosing(self._ordered(filt, cfg, 65536, None)) as batches:
            async for batch in batches:
                for msg, (seq, ns, _) in batch:
                    last = seq
                    try:
                        events.append(self._decode_at(msg, seq, ns))
                    except EventIntegrityError:
                        continue
        return events, last

    async def _loads_directly(self) -> bool:
        """Whether ``load`` reads by direct get: on a stream of one replica, the server that
        acknowledged an append answers the next read, so a command sees its own writes, in one
        request and without a consumer (three round trips and a consumer the server makes and
        deletes, per command). On a replicated stream any replica answers a direct get, and one
        that lags could hide a write just made: there the history is read through a consumer,
        which the stream's leader serves."""
        if self._direct_load is None:
            try:
                info = await self.js.stream_info(self.stream)
            except nats.errors.Error:
                return False  # asked again next time; the consumer read says what is wrong
            self._direct_load = info.config.num_replicas in (None, 1) and bool(
                info.config.allow_direct
            )
        return self._direct_load

    async def _find_recorded(
        self, aggregate_type: str, aggregate_id: str, event_ids: list[str]
    ) -> tuple[int, ...] | None:
        history, _ = await self.load(aggregate_type, aggregate_id)
        by_id = {e.envelope.event_id: e.seq for e in history}
        if all(i in by_id for i in event_ids):
            return tuple(by_id[i] for i in event_ids)
        return None

    async def raw_replay(
        self,
        *,
        from_seq: int = 1,
        from_time: datetime | None = None,
        filter_subject: str | Sequence[str] | None = None,
        follow: bool = False,
        subscription_out: list[Any] | None = None,
    ) -> AsyncIterator[Msg]:
        """Messages in stream order through a pull consumer in bounded batches, undecoded.

        ``filter_subject``: one subject, or several (a consumer with ``filter_subjects``,
        JetStream >= 2.10): the server skips every other message, so a reader of a few event
        types among a million never receives, parses or skips the rest.

        Without ``follow`` the iteration ends at the end of the selection as of when it
        started (``_pulled``). With it, the read goes on forever (``_follow``).
        """
        filters = _filters(filter_subject)
        filt = filters[0] if len(filters) == 1 else subjects.all_events()
        cfg = _start_at(from_seq, from_time)
        cfg.ack_policy = AckPolicy.NONE
        if len(filters) > 1:
            cfg.filter_subjects = filters
        if follow:
            async for msg in self._follow(filt, cfg, subscription_out):
                yield msg
            return
        async with contextlib.aclosing(self._pulled(filt, cfg, subscription_out)) as batches:
            async for batch in batches:
                for msg, _ in batch:
                    yield msg

    async def _ordered(
        self,
        filt: str,
        cfg: ConsumerConfig,
        pending_limit: int,
        subscription_out: list[Any] | None,
    ) -> AsyncGenerator[list[tuple[Msg, tuple[int, int, int]]], None]:
        """A one-shot read's messages with their positions (``ack_position``), in stream order,
        in batches of what had arrived: the reader hops through one generator per batch, not
        per message, and each position is parsed once.
        """
        # A one-shot read (an aggregate's history for one command) leaves its ephemeral
        # consumer on the server until the consumer's inactivity threshold, 5 s by default;
        # nats-server 2.15 caps a stream at 1,000 consumers, so a few hundred loads a second
        # filled it and every load failed. Gone half a second after the read.
        cfg.inactive_threshold = READ_CONSUMER_IDLE_S
        for attempt in itertools.count(1):
            sub = await self.js.subscribe(
                filt,
                stream=self.stream,
                ordered_consumer=True,
                config=cfg,
                pending_msgs_limit=pending_limit,
                pending_bytes_limit=pending_limit * 4096,
            )
            try:
                info = await sub.consumer_info()
                break
            except nats.js.errors.NotFoundError:
                # Seen once under heavy load (two test workers, services catching up): the
                # server said "consumer not found" for the consumer just made, gone as idle
                # or replaced by the ordered consumer's reset. Nothing was read: start over.
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()
                if attempt == 3:
                    raise
        if subscription_out is not None:
            subscription_out.append(sub)
        try:
            delivered = info.delivered.consumer_seq if info.delivered else 0
            if info.num_pending == 0 and not delivered:
                return  # nothing delivered and nothing pending: the range is empty
            # Drain nats-py's pending queue directly: next_msg() and the messages iterator
            # create a task per message, which costs more than decoding the event. The
            # subscription's own pending limits still bound memory. (nats-py 2.16 internals,
            # pinned in requirements.lock.)
            core = sub._sub  # the JetStream wrapper copies counters; the core one is live
            queue: asyncio.Queue[Msg] = core._pending_queue
            jsi = core._jsi
            while True:
                batch: list[tuple[Msg, tuple[int, int, int]]] = []
                if queue.empty():
                    # asyncio.timeout, not wait_for: in 3.11 wait_for can swallow a
                    # cancellation, and a stopped subscription would then read on.
                    try:
                        async with asyncio.timeout(5.0):
                            msg = await queue.get()
                    except TimeoutError:
                        raise EventLogError("replay stalled: no message for 5 s") from None
                else:
                    msg = queue.get_nowait()
                while True:
                    core._pending_size -= len(msg.data)
                    if jsi is not None:
                        # What next_msg() does: answer the server's flow control as soon as
                        # the message before it is consumed, or the server pauses delivery.
                        jsi._active = True
                        if jsi._fcr and jsi.get_js_delivered() >= jsi._fciseq:
                            fcr, jsi._fcr = jsi._fcr, None
                            await self.nc.publish(fcr)
                    position = ack_position(msg)
                    batch.append((msg, position))
                    if position[2] == 0:
                        yield batch
                        return
                    if len(batch) >= ORDERED_BATCH or queue.empty():
                        break
                    msg = queue.get_nowait()
                yield batch
        finally:
            with contextlib.suppress(Exception):  # the connection may already be gone
                await sub.unsubscribe()

    async def _pulled(
        self, filt: str, cfg: ConsumerConfig, holder: list[Any] | None
    ) -> AsyncGenerator[list[tuple[Msg, tuple[int, int, int]]], None]:
        """A one-shot read's messages with their positions (``ack_position``), in stream order,
        in batches of what had arrived, up to the end of the selection as the server counted
        it when the read began.

        Through an ephemeral pull consumer asked for exactly what the selection holds, at most
        ``FOLLOW_BATCH`` messages a request and two requests at a time, so the reader holds at
        most two requests' worth whatever the length of the log. Through an ordered push
        consumer (as before, and still for ``load``'s short reads) the server sent ahead as
        fast as it read the stream: a reader that fell behind held tens of thousands of
        messages (accountability's checkpointer, hashing a 100,000-event log while the
        service settled, held 20,000; at a million, up to the 65,536 its queue allowed), and
        nats-py checked each pushed message's order and flow control besides. Every request
        is used up exactly, so nothing stays open on the server once the read ends.

        A consumer idle past ``READ_PULL_IDLE_S`` (a reader that stopped for that long between
        two requests) is gone from the server: the read goes on through a new one from the
        sequence after the last message received, up to the same end.
        """
        info = await self._add_pull_consumer(cfg, filt, READ_PULL_IDLE_S)
        left = int(info.num_pending or 0)  # of the selection, still to receive
        if left == 0:
            return  # nothing matches from where the read starts
        inbox, sub = await self._pull_inbox()
        if holder is not None:
            holder.append(_PullFollower(self.js, self.stream, info.name, sub))
        next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{self.stream}.{info.name}"
        # Messages asked for and not yet received, over the open requests; of ``left``, how
        # many no request covers yet.
        outstanding, unasked = 0, left
        last, restarted_after = 0, -1
        asked_again = False  # after requests that ended unseen (``_next_pulled``)
        queue: asyncio.Queue[Msg] = sub._pending_queue  # see _follow: no task per message
        try:
            while True:
                while outstanding <= FOLLOW_BATCH // 2 and unasked:
                    n = min(FOLLOW_BATCH, unasked)
                    await self.nc.publish(next_subject, _pull_request(n), reply=inbox)
                    unasked -= n
                    outstanding += n
                pulled = await self._next_pulled(queue, info.name, "read", asked_again)
                asked_again = pulled is None
                if pulled is None:
                    unasked += outstanding  # our requests ended unseen: ask again
                    outstanding = 0
                    continue
                msg = pulled
                batch: list[tuple[Msg, tuple[int, int, int]]] = []
                while True:
                    sub._pending_size -= len(msg.data)
                    headers = msg.headers if not msg.data else None
                    status = headers.get("Status") if headers else None
                    if headers is None or status is None:
                        position = ack_position(msg)
                        batch.append((msg, position))
                        last = position[0]
                        outstanding -= 1
                        left -= 1
                        if not left:
                            yield batch
                            return
                    elif status in ("408", "409") and "Nats-Pending-Messages" in headers:
                        # A request ended (expired, or its byte budget spent) with this many
                        # of its messages never sent: ask for them again.
                        unsent = int(headers["Nats-Pending-Messages"])
                        outstanding = max(0, outstanding - unsent)
                        unasked += unsent
                    elif status == "503" and last != restarted_after:
                        # No consumer answers the request: it went idle and the server
                        # removed it. Everything it sent came before this answer, so the read
                        # goes on through a new one from the sequence after the last received
                        # (once for each position: a second 503 there is a real error).
                        restarted_after = last
                        info = await self.js.add_consumer(self.stream, config=_after(cfg, last))
                        next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{self.stream}.{info.name}"
                        if holder is not None:
                            holder.append(_PullFollower(self.js, self.stream, info.name, sub))
                        outstanding, unasked = 0, left
                        break
                    elif status != "100":  # 100: an idle heartbeat
                        description = headers.get("Description", "")
                        raise EventLogError(f"read: consumer {info.name}: {status} {description}")
                    if len(batch) >= ORDERED_BATCH or queue.empty():
                        break
                    msg = queue.get_nowait()
                if batch:
                    yield batch
        finally:
            with contextlib.suppress(Exception):  # the connection may already be gone
                await sub.unsubscribe()

    async def _follow(
        self, filt: str, cfg: ConsumerConfig, holder: list[Any] | None
    ) -> AsyncIterator[Msg]:
        """Every message from where ``cfg`` starts, then each new one as it is appended.

        An ephemeral pull consumer: the reader asks for ``FOLLOW_BATCH`` messages at a time and
        asks again once half of what it asked for has arrived, so however far behind it starts,
        it never holds more than two requests' worth. A caught-up reader's open request gets
        each new event at once. Silence past three heartbeats raises ``EventLogError``: the
        server went away or lost the consumer, and the caller starts again from its checkpoint.
        """
        info = await self._add_pull_consumer(cfg, filt, FOLLOW_CONSUMER_IDLE_S)
        inbox, sub = await self._pull_inbox()
        handle = _PullFollower(self.js, self.stream, info.name, sub)
        if holder is not None:
            holder.append(handle)
        next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{self.stream}.{info.name}"
        request = _pull_request(FOLLOW_BATCH)
        # Messages asked for and not yet received, over the open requests.
        outstanding = 0
        # The consumer numbers what it sends 1, 2, 3, ... (no acks: nothing is sent twice).
        # A number skipped was sent and never arrived (a node of the cluster went away with
        # it in flight): the consumer will not send it again, so the read starts over from the
        # caller's checkpoint rather than go on without it.
        sent = 0
        asked_again = False  # after requests that ended unseen (``_next_pulled``)
        queue: asyncio.Queue[Msg] = sub._pending_queue  # see raw_replay: no task per message
        try:
            while True:
                if outstanding <= FOLLOW_BATCH // 2:
                    await self.nc.publish(next_subject, request, reply=inbox)
                    outstanding += FOLLOW_BATCH
                pulled = await self._next_pulled(queue, info.name, "follow", asked_again)
                asked_again = pulled is None
                if pulled is None:
                    outstanding = 0  # our requests ended unseen: ask again
                    continue
                msg = pulled
                sub._pending_size -= len(msg.data)
                headers = msg.headers if not msg.data else None
                status = headers.get("Status") if headers else None
                if headers is None or status is None:
                    outstanding -= 1
                    number = _consumer_sequence(msg)
                    if number is not None:
                        if number != sent + 1:
                            raise EventLogError(
                                f"follow: consumer {info.name} sent message {number} after "
                                f"{sent}: {number - sent - 1} lost on the way"
                            )
                        sent = number
                    yield msg
                    continue
                if status == "100":
                    continue  # idle heartbeat: the consumer is alive
                if status in ("408", "409") and "Nats-Pending-Messages" in headers:
                    # A request ended (expired, or its byte budget spent) with this many of
                    # its messages never sent.
                    outstanding = max(0, outstanding - int(headers["Nats-Pending-Messages"]))
                    continue
                description = headers.get("Description", "")
                raise EventLogError(f"follow: consumer {info.name}: {status} {description}")
        finally:
            with contextlib.suppress(Exception):  # the connection may already be gone
                await sub.unsubscribe()

    async def _pull_inbox(self) -> tuple[str, Subscription]:
        """An inbox of the reader's own for its pull consumer's messages, with room for two
        requests and their status messages: nothing is ever dropped."""
        inbox = self.nc.new_inbox()
        sub = await self.nc.subscribe(
            inbox,
            pending_msgs_limit=FOLLOW_BATCH * 4,
            pending_bytes_limit=FOLLOW_MAX_BYTES * 4,
        )
        return inbox, sub

    async def _add_pull_consumer(
        self, cfg: ConsumerConfig, filt: str, idle_s: float
    ) -> ConsumerInfo:
        """An ephemeral pull consumer of this reader's own: in memory and one replica (nothing
        to keep), gone from the server after ``idle_s`` without a request."""
        if not cfg.filter_subjects:
            cfg.filter_subject = filt
        cfg.inactive_threshold = idle_s
        cfg.mem_storage = True
        cfg.num_replicas = 1
        return await self.js.add_consumer(self.stream, config=cfg)

    async def _next_pulled(
        self, queue: asyncio.Queue[Msg], consumer: str, what: str, asked_again: bool = False
    ) -> Msg | None:
        """The next message (or status) a pull consumer sent; None once the server holds none
        of this reader's requests any more (they ended unseen, and the caller asks again).
        ``asked_again``: the caller was told None last time and nothing has come since; if
        its new requests end unseen too, what the server sends does not arrive here (it
        drops a request whose reply no one subscribes to), and the read ends.

        A silence of three heartbeats may be this process's own: an event loop held up for
        seconds (a long fold, a collection of a large heap) reads the heartbeats late, and a
        filtered reader with nothing to receive has nothing else. The server is asked before
        the read gives up. A server that still holds a request whose heartbeats have not come
        for a second such stretch sends them where they do not arrive (suspected after a
        failover of the cluster, where a projection stopped applying while readiness said it
        was caught up): the read gives up then too, and the caller starts again.
        """
        silent = 0
        while True:
            if not queue.empty():
                return queue.get_nowait()
            try:
                async with asyncio.timeout(FOLLOW_HEARTBEAT_S * 3 + 1):
                    return await queue.get()
            except TimeoutError:
                silent += 1
                waiting = await self._still_waiting(consumer)
                if waiting is None or (waiting and silent >= 2):
                    raise EventLogError(
                        f"{what}: no message or heartbeat from consumer {consumer} "
                        f"for {silent * (FOLLOW_HEARTBEAT_S * 3 + 1):.0f} s"
                    ) from None
                if waiting == 0:
                    if asked_again:
                        raise EventLogError(
                            f"{what}: consumer {consumer}: requests end without a word "
                            "reaching this reader"
                        ) from None
                    return None

    async def _still_waiting(self, consumer: str) -> int | None:
        """How many pull requests ``consumer`` holds open, or None if it or the server is gone."""
        try:
            found = await self.js.consumer_info(self.stream, consumer)
        except Exception:  # noqa: BLE001 - gone, or unreachable: either way, start over
            return None
        return int(found.num_waiting or 0)

    async def replay(self, **selection: Unpack[Selection]) -> AsyncIterator[RecordedEvent]:
        """``raw_replay``'s messages (the same ``selection``, the same defaults), decoded."""
        if selection.get("follow", False):
            decode = self.decode
            async for msg in self.raw_replay(**selection):
                try:
                    yield decode(msg)
                except EventIntegrityError:
                    continue  # never believed; the consumers dead-letter it and alert
            return
        filters = _filters(selection.get("filter_subject"))
        filt = filters[0] if len(filters) == 1 else subjects.all_events()
        cfg = _start_at(selection.get("from_seq", 1), selection.get("from_time"))
        cfg.ack_policy = AckPolicy.NONE
        if len(filters) > 1:
            cfg.filter_subjects = filters
        decode_at = self._decode_at
        read = self.registry.decode
        async with contextlib.aclosing(self._pulled(filt, cfg, None)) as batches:
            async for batch in batches:
                if self.keys is None:
                    # ``_decode_at`` without keys, inline: a call less an event, where the
                    # whole of what replay adds to the read is a few microseconds.
                    for msg, (seq, ns, _) in batch:
                        subject, data = msg.subject, msg.data
                        etype = subject[subject.rfind(".") + 1 :]
                        env = read(data, msg.headers, subject_type=etype)
                        yield _recorded(seq, subject, ns, env, data)
                    continue
                for msg, (seq, ns, _) in batch:
                    try:
                        yield decode_at(msg, seq, ns)
                    except EventIntegrityError:
                        continue  # never believed; the consumers dead-letter it and alert
