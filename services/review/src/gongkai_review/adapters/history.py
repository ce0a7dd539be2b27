"""The histories a signature is decided on, kept between commands and read on from where they
ended.

A signature folds the post's events, the review's, the unit's policy and each signer's roles,
read from the log for every command (the log is the authority: a command must see every write
acknowledged before it). Each read was the whole history, every event's signature checked
again: a post's chain was verified once per signature on it, a leader's roles once per post
of the unit. The log denies deletes and purges, so a history once read stays the beginning of
that aggregate's history: what is kept here is read on from its last sequence
(``EventLog.load(after=)``), and only what was stored since is fetched and verified. Each
command still asks the log, so it sees what any writer recorded before it.
"""

from __future__ import annotations

from collections import OrderedDict

from gongkai.eventlog import EventLog, RecordedEvent

#: Aggregates kept, least recently read dropped first: the posts under review now, the people
#: who sign and the units' policies (a post's history is a few kilobytes of decoded events).
KEPT = 1024


class Histories:
    """Aggregate histories read before, by (aggregate type, id); safe for concurrent commands
    (two reads of one aggregate keep the longer)."""

    def __init__(self, kept: int = KEPT) -> None:
        self.kept = kept
        self._held: OrderedDict[tuple[str, str], tuple[tuple[RecordedEvent, ...], int]] = (
            OrderedDict()
        )

    async def load(
        self, evlog: EventLog, aggregate_type: str, aggregate_id: str
    ) -> tuple[list[RecordedEvent], int]:
        """``evlog.load``'s answer: the aggregate's history and its last sequence."""
        key = (aggregate_type, aggregate_id)
        held = self._held.get(key)
        before, after = held if held is not None else ((), 0)
        new, last = await evlog.load(aggregate_type, aggregate_id, after=after)
        events = (*before, *new)
        now = self._held.get(key)
        if now is None or now[1] <= last:
            self._held[key] = (events, last)
            self._held.move_to_end(key)
            if len(self._held) > self.kept:
                self._held.popitem(last=False)
        return list(events), last
