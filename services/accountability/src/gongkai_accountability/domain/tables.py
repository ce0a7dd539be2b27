"""The read model's tables and their typed rows.

Each typed row is a frozen dataclass: the fold builds a new one (``dataclasses.replace``)
where it changed a dict in place, so a row handed out is never changed under its reader (the
kept days hold rows without copying them). ``encode`` writes exactly the JSON object the
untyped rows were (the same keys, absent where they were absent), so stored rows, the
projection's digest and HTTP bodies stay byte for byte what they were.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gongkai_accountability.domain.rows import NAMES, MemoryRows, Row, Table, plain


@dataclass(frozen=True, slots=True)
class Alert:
    """An event in the log that failed a trust check and was never applied (``IntegrityAlert``)."""

    #: The stream sequence of the event refused.
    sequence: int
    subject: str
    #: Which check failed (unsigned, unknown_key, ..., authority).
    check: str
    detail: str
    claimed_event_id: str | None
    claimed_type: str | None
    #: The IntegrityAlert's own event.
    event_id: str
    recorded_at: str

    def encode(self) -> Row:
        return {
            "sequence": self.sequence,
            "subject": self.subject,
            "check": self.check,
            # The tag column lists filter on (``kind``): the check.
            "kind": self.check,
            "detail": self.detail,
            "claimed_event_id": self.claimed_event_id,
            "claimed_type": self.claimed_type,
            "event_id": self.event_id,
            "recorded_at": self.recorded_at,
        }

    @classmethod
    def decode(cls, row: Row) -> Alert:
        return cls(
            row["sequence"], row["subject"], row["check"], row["detail"],
            row.get("claimed_event_id"), row.get("claimed_type"), row["event_id"],
            row["recorded_at"],
        )


POST = plain("post")
PUBLICATION = plain("publication")
UNIT = plain("unit")
COLUMN = plain("column")
CASE = plain("case")
FINDING = plain("finding")
VIOLATION = plain("violation")
TODO = plain("todo")
ALERT: Table[Alert] = Table("alert", Alert.encode, Alert.decode)

#: Every table of the read model, in ``rows.NAMES``' order.
ALL: tuple[Table[Any], ...] = (
    POST, PUBLICATION, UNIT, COLUMN, CASE, FINDING, VIOLATION, TODO, ALERT
)
assert tuple(ALL) == NAMES
#: A table by its name (a caller may name it with a plain string).
BY_NAME: dict[str, Table[Any]] = {str(t): t for t in ALL}


def as_json(rows: MemoryRows) -> dict[str, dict[str, Row]]:
    """Every table's rows as the JSON objects SQL keeps (``Table.encode_row``): what a digest
    or a comparison of two folds reads."""
    return {
        name: {k: BY_NAME[name].encode_row(r) for k, r in found.items()}
        for name, found in rows.tables.items()
    }
