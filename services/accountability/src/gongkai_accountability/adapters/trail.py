"""One post's chain of custody read from the log by subject, not by folding the whole log.

A post's row in the read model is made of its own aggregate (``gk.ev.post.<id>.*``), its review
chains (``gk.ev.review.<id>.*``: the review aggregate's id is the post's), the publications,
findings and violations that name it, and the directory (whose authority the fold checks again).
The first two and the directory are read by their subjects. The others name the post only in
their payload, so which of them to read comes from an index: the live read model's row for the
post (its trail names every publication, finding and violation it met). What the index has not
seen yet, the events after its position, is read by event type and kept if it names the post.

The events read are folded by the same ``evolve``, in log order, with the same masking and the
same trust checks (each event's signature) as ``fold_log``: the row is the one a fold of the
whole log gives, at a cost that does not grow with the log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from gongkai import subjects
from gongkai.eventlog import EventLog
from gongkai.events import EventDecodeError
from gongkai.logtypes import RecordedEvent
from gongkai.masking import masked_event
from gongkai_accountability.domain.fold import as_of_day, evolve
from gongkai_accountability.domain.rows import MemoryRows
from gongkai_accountability.domain.tables import POST, Post

#: The directory's events: who held which role when (the fold re-checks every signature's
#: authority against it). A few per person, read by type.
DIRECTORY = (
    subjects.type_filter("UnitRegistered", "unit"),
    subjects.type_filter("RoleGranted", "person"),
    subjects.type_filter("RoleRevoked", "person"),
)
#: What names a post in its payload only: read by type after the index's position.
LINKING = ("PostPublished", "PublicationRemoved", "FindingReported", "ViolationRecorded")
#: Beyond this many events past the index, reading them costs more than it is worth.
TAIL_LIMIT = 50_000


@dataclass
class Links:
    """The aggregates other than the post's own that its row is made of, as an index knows
    them up to ``position`` (a stream sequence; 0: the index knows nothing)."""

    publications: set[str] = field(default_factory=set)
    findings: set[str] = field(default_factory=set)
    violations: set[str] = field(default_factory=set)
    position: int = 0

    @classmethod
    def of(cls, post: Post | None, position: int) -> Links:
        """What a folded post row names: every step of its trail carries the id it is about."""
        links = cls(position=position)
        if post is None:
            return links
        for s in post.trail:
            if s.publication_id:
                links.publications.add(s.publication_id)
            if s.finding_id:
                links.findings.add(s.finding_id)
            if s.violation_id:
                links.violations.add(s.violation_id)
        links.publications.update(post.publications)
        return links

    def filters(self) -> list[str]:
        out = []
        for agg, ids in (
            ("publication", self.publications),
            ("finding", self.findings),
            ("violation", self.violations),
        ):
            out += [subjects.aggregate_filter(agg, i) for i in sorted(ids)]
        return out


async def _read(evlog: EventLog, filt: str, from_seq: int = 1) -> list[RecordedEvent]:
    # Without a consumer (a direct get): a trail is a dozen short reads, and a consumer's
    # set-up and removal cost the server more than reading a post's few events.
    out = []
    async for msg in evlog.read_stored(filt, from_seq=from_seq):
        try:
            out.append(evlog.decode_stored(msg))
        except EventDecodeError:
            continue  # refused by a trust check or undecodable: never folded (as fold_log)
    return out


def _names(env: Any, post_id: str) -> bool:
    return getattr(env.payload, "post_id", None) == post_id


async def _tail(evlog: EventLog, post_id: str, after: int) -> list[RecordedEvent]:
    """The linking events after ``after`` that name ``post_id`` (read by type)."""
    reads = [
        _read(evlog, subjects.type_filter(t), from_seq=after + 1) for t in LINKING
    ]
    found = [e for batch in await asyncio.gather(*reads) for e in batch]
    return [e for e in found if _names(e.envelope, post_id)]


def links_from_db(url: str, post_id: str) -> Links | None:
    """The index as accountability's read model at ``url`` holds it (None: no read model
    there, or one that cannot be read). Only read: a missing SQLite file is not created."""
    from sqlalchemy.exc import SQLAlchemyError

    from gongkai.projection import ProjectionStore, make_engine
    from gongkai_accountability.adapters.sql import AccountabilityProjection, ReadModel

    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        return None
    projection = AccountabilityProjection()
    engine = make_engine(url)
    try:
        position = ProjectionStore(engine, manage_schema=False).checkpoint(projection)
        if position == 0:
            return None
        return Links.of(ReadModel(engine, projection).get(POST, post_id), position)
    except SQLAlchemyError:
        return None
    finally:
        engine.dispose()


class TooFarBehind(Exception):
    """The index is too far behind the log for a per-aggregate read to pay."""


async def post_rows(
    evlog: EventLog, post_id: str, links: Links, *, until: date | None = None
) -> MemoryRows:
    """The post's row as ``fold_log(until=until)`` would fold it (``rows.get("post", id)``;
    None: no such post then), beside the directory's units.

    ``links`` names the publications, findings and violations an index has seen up to its
    position; the linking events after it are read by type (``TooFarBehind`` when that is
    more than ``TAIL_LIMIT`` events).
    """
    last = await evlog.last_sequence()
    if last - links.position > TAIL_LIMIT:
        raise TooFarBehind(f"the index is {last - links.position:,} events behind the log")
    own = [
        subjects.aggregate_filter("post", post_id),
        subjects.aggregate_filter("review", post_id),
    ]
    reads = [_read(evlog, f) for f in (*own, *DIRECTORY, *links.filters())]
    tail = _tail(evlog, post_id, links.position) if links.position < last else None
    batches = await asyncio.gather(*reads, *([tail] if tail is not None else []))
    tail_events = batches[-1] if tail is not None else []
    # A linked aggregate first seen in the tail: its later events (a removal) are read too.
    extra = Links(
        publications={
            e.envelope.payload.publication_id
            for e in tail_events
            if e.envelope.type == "PostPublished"
        },
        findings={
            e.envelope.payload.finding_id
            for e in tail_events
            if e.envelope.type == "FindingReported"
        },
        violations={
            e.envelope.aggregate_id for e in tail_events if e.envelope.type == "ViolationRecorded"
        },
    )
    extra.publications -= links.publications
    extra.findings -= links.findings
    extra.violations -= links.violations
    more = await asyncio.gather(*(_read(evlog, f) for f in extra.filters()))
    return fold_post(post_id, [*batches, *more], until)


def fold_post(
    post_id: str, batches: Iterable[list[RecordedEvent]], until: date | None = None
) -> MemoryRows:
    """Fold what was read, once each, in log order (the fold's own rule: as ``fold_log``)."""
    events = {e.seq: e for batch in batches for e in batch}
    rows = MemoryRows()
    for seq in sorted(events):
        env = events[seq].envelope
        if until is not None and as_of_day(env) > until:
            continue
        evolve(rows, masked_event(env), seq)
    return rows


@dataclass
class TrailRead:
    """A post's rows as ``gongkai audit trail`` read them, and how."""

    rows: MemoryRows
    #: "subjects": the post's aggregates by subject, indexed by the read model at ``db_url``;
    #: "whole log": no usable index, the whole log folded.
    how: str


async def read_trail(evlog: EventLog, post_id: str, db_url: str | None) -> TrailRead:
    """The post's chain of custody as the command line answers it: by subject when
    accountability's read model is at hand as the index, else from the whole log (slower,
    the same answer)."""
    from gongkai_accountability.adapters.log import fold_log

    links = await asyncio.to_thread(links_from_db, db_url, post_id) if db_url else None
    if links is not None:
        try:
            return TrailRead(await post_rows(evlog, post_id, links), "subjects")
        except TooFarBehind:
            pass
    return TrailRead((await fold_log(evlog)).rows, "whole log")


__all__ = [
    "DIRECTORY",
    "LINKING",
    "Links",
    "TooFarBehind",
    "TrailRead",
    "fold_post",
    "links_from_db",
    "post_rows",
    "read_trail",
]
